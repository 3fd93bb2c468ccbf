"""Structure of docker-compose.yml, the Dockerfile and .dockerignore (no Docker engine needed)."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PULSE_ROLES = {"ingestor": "ingestor", "writer": "writer", "projector": "projector", "api": "api"}
INFRASTRUCTURE = {"scylla", "kafka", "kafka-ui"}


# --- reading the files ---------------------------------------------------------------------


def _mapping(value: object, where: str) -> dict[str, object]:
    assert isinstance(value, dict), f"{where} must be a mapping, got {value!r}"
    assert all(isinstance(key, str) for key in value), f"{where} has non-string keys"
    return {str(key): item for key, item in value.items()}


def _strings(value: object, where: str) -> list[str]:
    """A YAML list of scalars or a shell string, as argv-like strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    assert isinstance(value, list), f"{where} must be a list or a string, got {value!r}"
    return [str(item) for item in value]


def _load_compose() -> dict[str, dict[str, object]]:
    document = _mapping(yaml.safe_load((ROOT / "docker-compose.yml").read_text()), "compose file")
    services = _mapping(document.get("services"), "services")
    return {name: _mapping(spec, f"service {name}") for name, spec in services.items()}


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, object]]:
    return _load_compose()


def _environment(service: dict[str, object], name: str) -> dict[str, str]:
    raw = service.get("environment")
    if raw is None:
        return {}
    if isinstance(raw, list):
        pairs = [str(item).split("=", 1) for item in raw]
        return {pair[0]: pair[1] if len(pair) == 2 else "" for pair in pairs}
    return {key: str(value) for key, value in _mapping(raw, f"{name}.environment").items()}


def _published_ports(service: dict[str, object], name: str) -> set[int]:
    published: set[int] = set()
    raw = service.get("ports")
    if raw is None:
        return published
    assert isinstance(raw, list), f"{name}.ports must be a list"
    for entry in raw:
        if isinstance(entry, dict):
            published.add(int(str(_mapping(entry, f"{name}.ports[]")["published"])))
        else:
            # "HOST:CONTAINER" or "IP:HOST:CONTAINER", optionally "/tcp"
            parts = str(entry).split("/")[0].split(":")
            assert len(parts) >= 2, f"{name} port {entry!r} is not published on the host"
            published.add(int(parts[-2]))
    return published


def _depends_on(service: dict[str, object], name: str) -> dict[str, str]:
    """Dependency name -> condition (the short list form means service_started)."""
    raw = service.get("depends_on")
    if raw is None:
        return {}
    if isinstance(raw, list):
        return {str(dep): "service_started" for dep in raw}
    return {
        dep: str(_mapping(spec, f"{name}.depends_on.{dep}").get("condition", "service_started"))
        for dep, spec in _mapping(raw, f"{name}.depends_on").items()
    }


def _dockerfile_instructions() -> list[tuple[str, list[str]]]:
    """(INSTRUCTION, arguments) per logical line, continuations joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    if pending:
        logical.append(pending)
    instructions: list[tuple[str, list[str]]] = []
    for text in logical:
        keyword, _, rest = text.partition(" ")
        instructions.append((keyword.upper(), rest.split()))
    return instructions


def _image_entrypoint() -> list[str]:
    entrypoints = [args for keyword, args in _dockerfile_instructions() if keyword == "ENTRYPOINT"]
    assert entrypoints, "the Dockerfile has no ENTRYPOINT"
    parsed = yaml.safe_load(" ".join(entrypoints[-1]))  # exec form is a JSON list
    return _strings(parsed, "Dockerfile ENTRYPOINT")


def _argv(service: dict[str, object], name: str) -> list[str]:
    """What the container runs: compose entrypoint (or the image's) followed by command."""
    entrypoint = (
        _strings(service["entrypoint"], f"{name}.entrypoint")
        if "entrypoint" in service
        else _image_entrypoint()
    )
    return entrypoint + _strings(service.get("command"), f"{name}.command")


def _normalized(path: str) -> str:
    return path.removeprefix("./").rstrip("/") or "."


# --- docker-compose.yml --------------------------------------------------------------------


def test_compose_defines_the_infrastructure_and_every_pulse_service(
    services: dict[str, dict[str, object]],
) -> None:
    # given
    expected = INFRASTRUCTURE | set(PULSE_ROLES) | {"migrate"}

    # when
    defined = set(services)

    # then
    assert expected <= defined, f"missing services: {sorted(expected - defined)}"


@pytest.mark.parametrize(
    ("service", "port"),
    [("scylla", 9042), ("kafka-ui", 8080), ("ingestor", 50051), ("api", 8000), ("kafka", 29092)],
)
def test_compose_publishes_the_port_of_each_entry_point(
    services: dict[str, dict[str, object]], service: str, port: int
) -> None:
    # given
    spec = services[service]

    # when
    published = _published_ports(spec, service)

    # then
    assert port in published, f"{service} does not publish {port} (publishes {published})"


@pytest.mark.parametrize("service", ["scylla", "kafka", "ingestor", "api"])
def test_compose_services_others_wait_for_have_healthchecks(
    services: dict[str, dict[str, object]], service: str
) -> None:
    # given
    spec = services[service]

    # when
    healthcheck = _mapping(spec.get("healthcheck"), f"{service}.healthcheck")
    test = _strings(healthcheck.get("test"), f"{service}.healthcheck.test")

    # then
    assert not healthcheck.get("disable", False), f"{service} disables its healthcheck"
    assert test and test[0] in {"CMD", "CMD-SHELL"}, f"{service} healthcheck test is {test!r}"
    assert len(test) > 1, f"{service} healthcheck runs nothing"


@pytest.mark.parametrize("service", sorted(INFRASTRUCTURE | set(PULSE_ROLES)))
def test_every_long_running_service_has_a_healthcheck(
    services: dict[str, dict[str, object]], service: str
) -> None:
    # given
    spec = services[service]

    # when
    healthcheck = _mapping(spec.get("healthcheck"), f"{service}.healthcheck")
    test = _strings(healthcheck.get("test"), f"{service}.healthcheck.test")

    # then
    assert not healthcheck.get("disable", False), f"{service} disables its healthcheck"
    assert test[:1] in (["CMD"], ["CMD-SHELL"]) and len(test) > 1, f"{service}: {test!r}"


@pytest.mark.parametrize(
    ("service", "kind"),
    [("ingestor", "grpc"), ("api", "http"), ("writer", "file"), ("projector", "file")],
)
def test_pulse_healthchecks_ask_the_process_for_its_readiness(
    services: dict[str, dict[str, object]], service: str, kind: str
) -> None:
    # given
    spec = services[service]
    environment = _environment(spec, service)

    # when
    healthcheck = _mapping(spec.get("healthcheck"), f"{service}.healthcheck")
    test = _strings(healthcheck.get("test"), f"{service}.healthcheck.test")

    # then: per-role readiness, not just "a port answers"
    assert test[1:5] == ["python", "-m", "pulse.healthcheck", kind], f"{service}: {test!r}"
    if kind == "http":
        assert test[5].endswith("/health/ready"), test
    if kind == "file":
        assert test[5] == environment.get("PULSE_SUPERVISION__HEALTH_FILE"), (
            f"{service} checks {test[5]} but writes its report to "
            f"{environment.get('PULSE_SUPERVISION__HEALTH_FILE')}"
        )


def test_kafka_ui_waits_for_a_healthy_kafka(services: dict[str, dict[str, object]]) -> None:
    # given
    kafka_ui = services["kafka-ui"]

    # when
    dependencies = _depends_on(kafka_ui, "kafka-ui")
    bootstrap = _environment(kafka_ui, "kafka-ui").get("KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS")

    # then
    assert dependencies.get("kafka") == "service_healthy"
    assert bootstrap == "kafka:9092"


def test_migrate_waits_for_healthy_scylla_and_kafka(
    services: dict[str, dict[str, object]],
) -> None:
    # given
    migrate = services["migrate"]

    # when
    dependencies = _depends_on(migrate, "migrate")

    # then
    assert dependencies.get("scylla") == "service_healthy"
    assert dependencies.get("kafka") == "service_healthy"
    assert _argv(migrate, "migrate") == ["pulse", "migrate"]


@pytest.mark.parametrize(("service", "role"), sorted(PULSE_ROLES.items()))
def test_pulse_services_start_after_migrate_completes(
    services: dict[str, dict[str, object]], service: str, role: str
) -> None:
    # given
    spec = services[service]

    # when
    dependencies = _depends_on(spec, service)

    # then
    assert dependencies.get("migrate") == "service_completed_successfully", role


@pytest.mark.parametrize(("service", "role"), sorted(PULSE_ROLES.items()))
def test_pulse_services_run_their_role_on_the_servers_backend(
    services: dict[str, dict[str, object]], service: str, role: str
) -> None:
    # given
    spec = services[service]

    # when
    argv = _argv(spec, service)
    environment = _environment(spec, service)

    # then
    assert argv == ["pulse", "serve", role], f"{service} runs {argv!r}"
    assert environment.get("PULSE_BACKEND") == "servers"
    assert environment.get("PULSE_KAFKA__BOOTSTRAP_SERVERS") == "kafka:9092"
    assert environment.get("PULSE_CQL__CONTACT_POINTS") == "scylla"
    assert spec.get("image") == services["migrate"].get("image"), "one image for every role"


def test_kafka_advertises_an_in_network_listener_and_one_for_the_host(
    services: dict[str, dict[str, object]],
) -> None:
    # given
    environment = _environment(services["kafka"], "kafka")

    # when
    advertised = dict(
        entry.split("://", 1) for entry in environment["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )
    listener_names = {
        entry.split("://", 1)[0] for entry in environment["KAFKA_LISTENERS"].split(",")
    }

    # then
    assert "kafka:9092" in advertised.values(), f"advertised: {advertised}"
    assert "localhost:29092" in advertised.values(), f"advertised: {advertised}"
    assert set(advertised) <= listener_names, "an advertised listener is not a listener"
    assert "CONTROLLER" not in advertised, "the controller listener must not be advertised"
    assert environment.get("KAFKA_PROCESS_ROLES") == "broker,controller"
    assert environment.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false"


def test_compose_images_are_pinned_to_a_tag(services: dict[str, dict[str, object]]) -> None:
    # given
    images = {name: spec.get("image") for name, spec in services.items()}

    # when
    unpinned = {}
    for name, image in images.items():
        if "@sha256:" in str(image):
            continue
        repository_and_tag = str(image).rsplit("/", 1)[-1]
        tag = repository_and_tag.partition(":")[2]
        if image is None or not tag or tag == "latest":
            unpinned[name] = image

    # then
    assert not unpinned, f"images without a pinned tag: {unpinned}"


# --- Dockerfile and .dockerignore ----------------------------------------------------------


def _copied_paths() -> set[tuple[str, str]]:
    """(source, destination) of every COPY from the build context (not from another stage)."""
    copied: set[tuple[str, str]] = set()
    for keyword, args in _dockerfile_instructions():
        if keyword not in {"COPY", "ADD"} or any(arg.startswith("--from") for arg in args):
            continue
        paths = [arg for arg in args if not arg.startswith("--")]
        *sources, destination = paths
        copied.update((_normalized(source), _normalized(destination)) for source in sources)
    return copied


def test_dockerfile_copies_every_package_pyproject_installs() -> None:
    # given
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages: list[str] = pyproject["tool"]["setuptools"]["packages"]
    top_level = {package.split(".")[0] for package in packages}

    # when
    copied = _copied_paths()

    # then: each one copied on its own, into a directory of its own name (a multi-source COPY
    # would merge the packages' contents into one directory)
    missing = {
        package
        for package in top_level
        if not any(
            source == package and destination.rsplit("/", 1)[-1] == package
            for source, destination in copied
        )
    }
    assert not missing, f"the Dockerfile does not copy: {sorted(missing)}"


def test_dockerfile_ships_the_cql_files_and_runs_pulse_as_a_non_root_user() -> None:
    # given
    instructions = _dockerfile_instructions()

    # when
    copied_sources = {source for source, _ in _copied_paths()}
    users = [args[0] for keyword, args in instructions if keyword == "USER"]

    # then
    assert "cql" in copied_sources, "`pulse migrate` needs the cql/ files in the image"
    assert users and users[-1] not in {"root", "0"}, f"final USER is {users[-1:]!r}"
    assert _image_entrypoint() == ["pulse"]


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    # given
    patterns = {
        _normalized(line.strip())
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }

    # when
    required = {".git", ".venv", ".pulse-dev", ".pulse-data"}

    # then
    assert required <= patterns, f"not ignored: {sorted(required - patterns)}"


def _port_entries(service: dict[str, object], name: str) -> list[tuple[str, int]]:
    """(host address, published port) of every port entry ("" when no address is given)."""
    entries: list[tuple[str, int]] = []
    for entry in service.get("ports") or []:  # type: ignore[attr-defined]
        if isinstance(entry, dict):
            spec = _mapping(entry, f"{name}.ports[]")
            entries.append((str(spec.get("host_ip", "")), int(str(spec["published"]))))
            continue
        parts = str(entry).split("/")[0].rsplit(":", 2)
        address = parts[0] if len(parts) == 3 else ""
        entries.append((address.strip("[]"), int(parts[-2]) if len(parts) >= 2 else 0))
    return entries


def test_compose_publishes_ports_on_loopback_only(services: dict[str, dict[str, object]]) -> None:
    # given: a port without an address is published on 0.0.0.0, every interface of the host
    # when
    exposed = {
        f"{name}:{port}": address or "0.0.0.0 (implicit)"
        for name, spec in services.items()
        for address, port in _port_entries(spec, name)
        if address not in {"127.0.0.1", "::1"}
    }

    # then
    assert not exposed, f"published beyond the host's loopback: {exposed}"
