"""Review: a cursor resumes only the list it came from; another tenant's list is another list
(query.paging: "copied from another list or query ... gets a 422 instead of a silently wrong
page")."""

from __future__ import annotations

from tests.unit.test_list_api import OCT_DAY, World, world

__all__ = ["world"]


def test_a_pulse_cursor_of_one_tenant_is_refused_on_another_tenants_list(
    world: World,
) -> None:
    # given: a cursor into acme's October 7 past 09:00 (acme has 31 pulses that day)
    acme = world.get(f"/v1/tenants/{world.acme}/pulses", limit=30, **OCT_DAY).json()
    assert acme["next_cursor"] is not None
    # when: the operator passes it to globex's list of the same day (globex: g1 at 09:00)
    response = world.get(
        f"/v1/tenants/{world.globex}/pulses", cursor=acme["next_cursor"], **OCT_DAY
    )
    # then: a 422 naming cursor, not a page that silently leaves g1 out
    assert response.status_code == 422, response.json()
