"""API keys: the pure rules (format, hashing, roles) and the verifier's cache."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from access.keys import Role, hash_secret, new_key, parse, principal_of, secret_matches
from access.sqlite import SQLiteKeyStore
from access.verifier import KeyVerifier, bearer
from kernel.errors import Invalid, Revoked, Unauthenticated

NOW = datetime(2026, 11, 3, tzinfo=UTC)


def test_a_key_is_prefix_id_secret_and_only_a_salted_hash_is_kept() -> None:
    # given / when
    a = new_key(Role.PRODUCER, (), "a", NOW)
    b = new_key(Role.PRODUCER, (), "b", NOW)
    # then
    parsed = parse(a.token)
    assert parsed is not None and parsed[0] == a.record.key_id
    secret = parsed[1]
    assert secret not in a.record.secret_hash
    assert a.record.secret_hash.startswith("scrypt$16384$8$1$")
    assert secret_matches(secret, a.record.secret_hash)
    assert not secret_matches(
        secret[:-1] + ("A" if secret[-1] != "A" else "B"), a.record.secret_hash
    )
    assert a.record.key_id != b.record.key_id
    # the same secret under two salts gives two digests
    assert hash_secret(secret) != hash_secret(secret)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "pl",
        "pl__",
        "xx_0123456789abcdef_" + "a" * 43,
        "pl_0123456789ABCDEF_" + "a" * 43,
        "pl_0123456789abcdef_" + "a" * 42,
        "pl_0123456789abcdef_" + "a" * 42 + "!",
    ],
)
def test_malformed_keys_do_not_parse(token: str) -> None:
    assert parse(token) is None


def test_a_corrupt_stored_hash_matches_nothing() -> None:
    assert not secret_matches("x", "scrypt$nope")
    assert not secret_matches("x", "bcrypt$1$2$3$4$5")


@pytest.mark.parametrize(
    ("role", "tenants", "field"),
    [
        (Role.TENANT, (), "tenant"),
        (Role.OPERATOR, ("acme",), "tenant"),
        (Role.PRODUCER, ("bad tenant",), "tenant"),
    ],
)
def test_tenants_must_fit_the_role(role: Role, tenants: tuple[str, ...], field: str) -> None:
    with pytest.raises(Invalid, match=f"^{field}: "):
        new_key(role, tenants, "", NOW)


def test_what_each_role_may_do() -> None:
    # given
    tenant = new_key(Role.TENANT, ("acme",), "", NOW, cost=2**10).record
    operator = new_key(Role.OPERATOR, (), "", NOW, cost=2**10).record
    anywhere = new_key(Role.PRODUCER, (), "", NOW, cost=2**10).record
    limited = new_key(Role.PRODUCER, ("acme",), "", NOW, cost=2**10).record
    t, o, a, lim = (principal_of(r) for r in (tenant, operator, anywhere, limited))
    # then
    assert (t.may_read("acme"), t.may_read("globex"), t.may_send_for("acme")) == (
        True,
        False,
        False,
    )
    assert (o.may_read("globex"), o.may_send_for("globex")) == (True, False)
    assert (a.may_read("acme"), a.may_send_for("globex")) == (False, True)
    assert (lim.may_send_for("acme"), lim.may_send_for("globex")) == (True, False)


@pytest.mark.parametrize("value", [None, "", "Bearer", "Bearer   ", "Basic abc", "pl_abc"])
def test_an_authorization_value_without_a_bearer_key_is_unauthenticated(value: str | None) -> None:
    with pytest.raises(Unauthenticated):
        bearer(value)


def test_the_verifier_rereads_a_key_after_the_ttl(tmp_path: Path) -> None:
    # given: a cached, then revoked key, on a clock the test moves
    store = SQLiteKeyStore(tmp_path / "keys.sqlite")
    made = new_key(Role.TENANT, ("acme",), "", NOW, cost=2**10)
    store.add(made.record)
    now = [0.0]
    verifier = KeyVerifier(store, ttl=2.0, clock=lambda: now[0])
    header = f"Bearer {made.token}"
    assert verifier.verify(header).key_id == made.record.key_id
    store.revoke(made.record.key_id, NOW)
    # when / then: still trusted inside the TTL, refused once it passed
    now[0] = 1.999
    assert verifier.verify(header).key_id == made.record.key_id
    now[0] = 2.0
    with pytest.raises(Revoked):
        verifier.verify(header)
    store.close()
