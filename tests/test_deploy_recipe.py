"""The deploy recipe against the one description of Salon's processes.

deploy/processes.yml says what each process runs, on which ports, with which environment
and how its health is checked. The container recipe (deploy/Dockerfile, deploy/compose.yml,
deploy/salon.env.example, .dockerignore) and the balancer's deploy/haproxy.cfg are read
here and compared with it, so that a command, a port variable, an environment variable or
a health path changed on one side only fails this file. No container is built or run: the
files are read as text and YAML.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from salon.dev.processes import ProcessSpec, load

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
ENV_FILE = "salon.env"
"""The env_file of the Salon services (relative to compose.yml): a copy of the example."""
ENV_EXAMPLE = DEPLOY / "salon.env.example"

COMMAND_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(?::?[-?+])([^}]*))?\}")
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|SALT|_KEY$|_KEY_")
INIT_DIRECTORY = "/docker-entrypoint-initdb.d/"
EXPECTED_IMAGES = {"postgres": "postgres:15", "redis": "redis:7", "rabbitmq": "rabbitmq:3"}
MIN_STOP_GRACE_S = {
    # The channel's companion has 15 s to stop and 5 s to exit, then Sanic waits up to
    # 15 s for open connections (connectors/whatsapp.py, salon/webhook/companion.py).
    "rasa": 35.0,
    # The batch in hand is finished first; a trigger_intent call to Rasa may take 30 s.
    "worker": 30.0,
}


# --------------------------------------------------------------------------- reading


def service_names(process: ProcessSpec) -> list[str]:
    """The compose services of its replicas: ``name`` alone, or ``name-1`` … ``name-n``."""
    if process.replicas == 1:
        return [process.name]
    return [f"{process.name}-{i + 1}" for i in range(process.replicas)]


def _squash(text: str) -> str:
    return " ".join(text.split())


@cache
def description() -> dict[str, Any]:
    raw = yaml.safe_load((DEPLOY / "processes.yml").read_text(encoding="utf-8"))
    assert isinstance(raw, dict) and isinstance(raw.get("processes"), dict), "deploy/processes.yml: no processes"
    return raw


@cache
def processes() -> dict[str, ProcessSpec]:
    """The description as the drill's launcher reads it (salon/dev/processes.py)."""
    found = load(DEPLOY / "processes.yml").processes
    for process in found.values():
        assert process.health_port and process.health_path, f"{process.name} has no health check"
    return found


def process_env(process: ProcessSpec) -> set[str]:
    """Every variable ``process`` reads: its own, and ``common_env`` for Salon's processes."""
    return set(load(DEPLOY / "processes.yml").env_of(process.name))


@cache
def compose() -> dict[str, Any]:
    raw = yaml.safe_load((DEPLOY / "compose.yml").read_text(encoding="utf-8"))
    assert isinstance(raw, dict) and isinstance(raw.get("services"), dict), "deploy/compose.yml: no services"
    return raw


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def service(name: str) -> dict[str, Any]:
    found = services().get(name)
    assert isinstance(found, dict), f"deploy/compose.yml has no service {name!r}"
    return found


@cache
def env_example() -> dict[str, str]:
    """The keys deploy/salon.env.example documents, with their example values."""
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        assert sep, f"deploy/salon.env.example: {line!r} is not KEY=value"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def environment(svc: dict[str, Any]) -> dict[str, str]:
    """A service's ``environment``, as a mapping of strings."""
    raw = svc.get("environment") or {}
    if isinstance(raw, list):
        pairs = (str(item).partition("=") for item in raw)
        return {key: value for key, _, value in pairs}
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}


def env_files(svc: dict[str, Any]) -> list[str]:
    raw = svc.get("env_file") or []
    items = [raw] if isinstance(raw, (str, dict)) else list(raw)
    return [str(item["path"] if isinstance(item, dict) else item) for item in items]


def variables_set(svc: dict[str, Any]) -> set[str]:
    """What a container of ``svc`` gets: its ``environment`` and the keys of its env_file."""
    names = set(environment(svc))
    if env_files(svc):
        names |= set(env_example())
    return names


def container_value(svc: dict[str, Any], name: str) -> str:
    """The value ``name`` has in the container (``environment`` wins over the env_file)."""
    env = environment(svc)
    if name in env:
        return env[name]
    assert env_files(svc) and name in env_example(), f"{name} is not set for this service"
    return env_example()[name]


def container_command(name: str) -> str:
    """The command a container of service ``name`` runs, as its shell reads it: the
    service's ``["sh", "-c", "exec <command>"]`` with compose's ``$$`` turned into ``$``.
    """
    command = service(name).get("command")
    assert isinstance(command, list) and len(command) == 3 and command[:2] == ["sh", "-c"], (
        f"service {name}: the command must be [\"sh\", \"-c\", \"exec <the process's command>\"], "
        f"got {command!r}")
    script = str(command[2])
    assert "$" not in script.replace("$$", ""), (
        f"service {name}: a single $ in its command is compose's own interpolation (taken from "
        f"the host when compose starts); write $${{VAR}} for the container's ${{VAR}}: {script!r}")
    assert script.startswith("exec "), (
        f"service {name}: the command must start with `exec ` so the process, not sh, "
        f"receives the stop signal: {script!r}")
    return _squash(script[len("exec "):].replace("$$", "$"))


def probe_arguments(name: str) -> list[str]:
    test = (service(name).get("healthcheck") or {}).get("test")
    assert isinstance(test, list) and test[:3] == ["CMD", "python", "-c"] and len(test) >= 6, (
        f"service {name}: its health check must be [\"CMD\", \"python\", \"-c\", *probe, "
        f"<port variable>, <path>], got {test!r}")
    assert test[3] == compose()["x-probe"], f"service {name}: its health check does not run x-probe"
    return [str(arg) for arg in test[4:]]


def compose_duration_s(text: str) -> float:
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", str(text))
    assert parts and "".join(n + u for n, u in parts) == str(text), f"not a compose duration: {text!r}"
    return sum(float(n) * units[u] for n, u in parts)


def strings(node: Any) -> list[str]:
    """Every string of a parsed YAML document (keys and values), comments left out."""
    if isinstance(node, dict):
        return [text for key, value in node.items() for text in strings(key) + strings(value)]
    if isinstance(node, list):
        return [text for item in node for text in strings(item)]
    return [node] if isinstance(node, str) else []


def interpolated(value: str) -> list[str]:
    """The variables compose interpolates into ``value`` (``${VAR}``, ``${VAR:?…}`` …)."""
    return [name for name, _ in INTERPOLATION.findall(value.replace("$$", ""))]


def without_interpolations(text: str) -> str:
    """``text`` with compose's ``${…}`` replaced by their defaults (or ``X``)."""
    return INTERPOLATION.sub(lambda m: m.group(2) if m.group(2) else "X", text)


# --------------------------------------------------------------------------- processes.yml


def test_every_variable_of_a_command_is_in_the_environment_of_its_process() -> None:
    for process in processes().values():
        missing = set(COMMAND_VARIABLE.findall(process.command)) - process_env(process)
        assert not missing, (
            f"deploy/processes.yml: the command of {process.name!r} uses {sorted(missing)}, "
            f"which are not in its env{' or common_env' if process.salon else ''}")
        ports = set(process.ports.values()) - process_env(process)
        assert not ports, f"deploy/processes.yml: {process.name!r} listens on {sorted(ports)}, not in its env"
        assert process.health_port in process.ports, (
            f"deploy/processes.yml: the health check of {process.name!r} names port "
            f"{process.health_port!r}, which is not one of {sorted(process.ports)}")


@pytest.mark.parametrize("path", ["endpoints.production.yml", "credentials.production.yml"])
def test_every_variable_of_rasas_production_files_is_in_the_rasa_process_env(path: str) -> None:
    document = yaml.safe_load((DEPLOY / path).read_text(encoding="utf-8"))
    used = {name for text in strings(document) for name in COMMAND_VARIABLE.findall(text)}
    missing = used - process_env(processes()["rasa"])
    assert not missing, (
        f"deploy/{path} uses {sorted(missing)}, which deploy/processes.yml does not give the "
        "rasa process (its env or common_env): compose would not set them and Rasa would not start")


# --------------------------------------------------------------------------- compose: processes


def test_compose_runs_each_process_as_many_times_as_described_with_its_command() -> None:
    for process in processes().values():
        names = service_names(process)
        for name in names:
            assert name in services(), (
                f"deploy/compose.yml has no service {name!r}: deploy/processes.yml runs "
                f"{process.replicas} replica(s) of {process.name!r}")
            assert container_command(name) == process.command, (
                f"service {name} runs\n  {container_command(name)}\nbut deploy/processes.yml "
                f"says {process.name!r} runs\n  {process.command}")
        others = [other for other, svc in services().items() if other not in names
                  and (svc.get("command") or [None])[:2] == ["sh", "-c"]
                  and container_command(other) == process.command]
        assert not others, (
            f"services {others} also run {process.name!r}: deploy/processes.yml has "
            f"{process.replicas} replica(s) of it, named {names}")


def test_compose_sets_every_variable_each_process_reads() -> None:
    for process in processes().values():
        for name in service_names(process):
            missing = process_env(process) - variables_set(service(name))
            assert not missing, (
                f"service {name} does not set {sorted(missing)}, which deploy/processes.yml "
                f"says {process.name!r} reads: add them to its environment, or to "
                "deploy/salon.env.example (its env_file)")


def test_the_salon_services_read_the_documented_env_file_and_the_others_none() -> None:
    for process in processes().values():
        for name in service_names(process):
            files = env_files(service(name))
            if process.salon:
                assert files == [ENV_FILE], (
                    f"service {name}: env_file must be {ENV_FILE!r} (documented by "
                    f"deploy/salon.env.example), got {files!r}")
            else:
                assert not files, (
                    f"service {name} runs {process.name!r}, not a Salon process: it gets only its "
                    f"own variables, never the env_file's secrets ({files!r})")


def test_ports_are_set_per_service_as_numbers() -> None:
    for process in processes().values():
        for name in service_names(process):
            env = environment(service(name))
            for port_name, variable in process.ports.items():
                value = env.get(variable)
                assert value is not None, (
                    f"service {name}: port {port_name!r} of {process.name!r} is {variable}, which its "
                    "`environment` does not set (ports belong to compose.yml, not to the env file)")
                assert value.isdigit() and 0 < int(value) < 65536, f"service {name}: {variable}={value!r} is not a port"


def test_servers_bind_every_interface_of_their_container() -> None:
    for process in processes().values():
        if "SALON_BIND_HOST" not in process_env(process):
            continue
        for name in service_names(process):
            value = environment(service(name)).get("SALON_BIND_HOST")
            assert value == "0.0.0.0", (
                f"service {name}: SALON_BIND_HOST must be 0.0.0.0 in its container (the private "
                f"network; only the balancer publishes a port), got {value!r}")


def test_each_health_check_asks_the_process_health_path_on_its_health_port() -> None:
    probe = compose()["x-probe"]
    compile(probe, "deploy/compose.yml x-probe", "exec")
    for process in processes().values():
        expected = [process.ports[process.health_port], process.health_path]
        if process.port_plus_shard:
            assert process.shard_env, f"deploy/processes.yml: {process.name!r} adds a shard to its port but has no shard_env"
            expected.append(process.shard_env)
        for name in service_names(process):
            assert probe_arguments(name) == expected, (
                f"service {name}: its health check asks {probe_arguments(name)}; deploy/processes.yml "
                f"says {process.name!r} answers GET {process.health_path} on {process.ports[process.health_port]}"
                + (f" plus the shard index of {process.shard_env}" if process.port_plus_shard else ""))


def test_worker_replicas_cover_every_shard_once() -> None:
    sharded = [process for process in processes().values() if process.shard_env]
    assert sharded, "deploy/processes.yml names no shard_env: the outbound workers share the queue by shard"
    for process in sharded:
        shards = []
        for name in service_names(process):
            value = environment(service(name)).get(process.shard_env, "")
            index, sep, count = value.partition("/")
            assert sep and index.isdigit() and count.isdigit(), (
                f"service {name}: {process.shard_env} must be i/n in its environment, got {value!r}")
            shards.append((int(index), int(count)))
        counts = {count for _, count in shards}
        assert counts == {process.replicas}, (
            f"{process.name}: the shards {shards} must all be out of {process.replicas}, its replicas")
        assert sorted(index for index, _ in shards) == list(range(process.replicas)), (
            f"{process.name}: the shards {shards} must be 0..{process.replicas - 1}, each once")


def test_graceful_stops_have_time_to_finish() -> None:
    for process_name, minimum in MIN_STOP_GRACE_S.items():
        for name in service_names(processes()[process_name]):
            grace = service(name).get("stop_grace_period")
            assert grace is not None and compose_duration_s(grace) >= minimum, (
                f"service {name}: stop_grace_period {grace!r} is shorter than the {minimum:g} s its "
                "process may take to stop cleanly (Docker's default is 10 s, then SIGKILL)")


# --------------------------------------------------------------------------- compose: the stores


def test_the_stores_run_with_health_checks_and_persistence() -> None:
    for name in description().get("services") or {}:
        svc = service(name)
        test = (svc.get("healthcheck") or {}).get("test")
        assert test, f"service {name} (deploy/processes.yml `services`) has no health check"
        expected = EXPECTED_IMAGES.get(name)
        if expected is not None:
            image = str(svc.get("image"))
            assert image == expected or image.startswith(expected + "-") or image.startswith(expected + "."), (
                f"service {name}: image {image!r}, expected {expected}")
    command = service("redis").get("command") or []
    text = " ".join(command) if isinstance(command, list) else str(command)
    assert "--appendonly yes" in text, f"redis must run with --appendonly yes (the window state outlives a restart): {text!r}"


def test_dependencies_wait_for_health() -> None:
    for name, svc in services().items():
        depends = svc.get("depends_on") or {}
        assert isinstance(depends, dict), f"service {name}: depends_on must name a condition for each service"
        for other, rule in depends.items():
            assert isinstance(rule, dict) and rule.get("condition") == "service_healthy", (
                f"service {name} depends on {other} without `condition: service_healthy`")
            assert (service(other).get("healthcheck") or {}).get("test"), (
                f"service {name} waits for {other} to be healthy, but {other} has no health check")


def _address(value: str) -> tuple[str, int | None] | None:
    """The (host, port) a value names: a URL, ``host:port`` or a bare service name."""
    if "${" in value:
        return None
    if "://" in value:
        parts = urlsplit(value)
        return (parts.hostname or "", parts.port)
    match = re.fullmatch(r"([a-z][a-z0-9-]*):(\d+)", value)
    if match:
        return match.group(1), int(match.group(2))
    if value in services():
        return value, None
    return None


def listening_ports(name: str) -> set[int]:
    """The ports service ``name`` listens on in its container."""
    stores = description().get("services") or {}
    if name in stores:
        return {int(stores[name]["port"])}
    for process in processes().values():
        if name in service_names(process):
            env = environment(service(name))
            extra = 0
            if process.port_plus_shard and process.shard_env:
                extra = int(env[process.shard_env].split("/")[0])
            return {int(env[variable]) + extra for variable in process.ports.values() if variable in env}
    return set()


def test_every_address_names_a_service_and_a_port_it_listens_on() -> None:
    stores = set(description().get("services") or {})
    for name, svc in services().items():
        env = environment(svc)
        for key, value in env.items():
            found = _address(value)
            if found is None:
                continue
            host, port = found
            assert host in services(), f"service {name}: {key}={value!r} names {host!r}, which is no service"
            if port is None and key.endswith("_HOST"):
                sibling = key[: -len("_HOST")] + "_PORT"
                port = int(env[sibling]) if sibling in env else None
            if port is not None:
                assert port in listening_ports(host), (
                    f"service {name}: {key}={value!r} but {host} listens on {sorted(listening_ports(host))}")
            if host in stores:
                rule = (svc.get("depends_on") or {}).get(host)
                assert rule is not None, f"service {name} uses {host} ({key}) but does not wait for it (depends_on)"


def test_the_stores_credentials_are_those_salon_uses() -> None:
    postgres = environment(service("postgres"))
    rasa = service(service_names(processes()["rasa"])[0])
    database = urlsplit(container_value(rasa, "DATABASE_URL"))
    assert database.username == postgres["POSTGRES_USER"] == container_value(rasa, "SALON_PG_USER"), (
        "DATABASE_URL's user, SALON_PG_USER and the postgres service's POSTGRES_USER differ")
    assert database.password is None, "DATABASE_URL must not carry the password (PGPASSWORD does)"
    assert database.path.lstrip("/") == postgres["POSTGRES_DB"], (
        f"DATABASE_URL names database {database.path!r}; the postgres service creates {postgres['POSTGRES_DB']!r}")
    tracker_db = container_value(rasa, "SALON_PG_DATABASE")
    created = set()
    for mount in service("postgres").get("configs") or []:
        if isinstance(mount, dict) and str(mount.get("target", "")).startswith(INIT_DIRECTORY):
            content = str(compose()["configs"][mount["source"]].get("content", ""))
            created |= set(re.findall(r"CREATE DATABASE \"?([A-Za-z_][A-Za-z0-9_]*)\"?", content))
    assert tracker_db in created | {postgres["POSTGRES_DB"]}, (
        f"SALON_PG_DATABASE={tracker_db!r} (Rasa's tracker store) is not created by the postgres service")
    rabbitmq = environment(service("rabbitmq"))
    assert rabbitmq["RABBITMQ_DEFAULT_USER"] == container_value(rasa, "SALON_RABBITMQ_USER"), (
        "SALON_RABBITMQ_USER differs from the rabbitmq service's RABBITMQ_DEFAULT_USER")
    for store, key, salon_name in (("postgres", "POSTGRES_PASSWORD", "SALON_PG_PASSWORD"),
                                   ("rabbitmq", "RABBITMQ_DEFAULT_PASS", "SALON_RABBITMQ_PASSWORD")):
        value = environment(service(store)).get(key, "")
        assert interpolated(value) == [salon_name], (
            f"service {store}: {key} must come from {salon_name}, the one Salon's processes use; got {value!r}")
    for name in service_names(processes()["rasa"]) + service_names(processes()["worker"]):
        value = environment(service(name)).get("PGPASSWORD", "")
        assert interpolated(value) == ["SALON_PG_PASSWORD"], (
            f"service {name}: PGPASSWORD must come from SALON_PG_PASSWORD, got {value!r}")


def test_only_the_balancer_publishes_a_port_on_loopback_by_default() -> None:
    balancer = processes()["balancer"]
    for name, svc in services().items():
        if name in service_names(balancer):
            continue
        assert not svc.get("ports"), f"service {name} publishes {svc.get('ports')!r}: only the balancer may"
    for name in service_names(balancer):
        published = service(name).get("ports") or []
        assert published, f"service {name} publishes no port: Meta's webhook cannot reach it"
        webhook_port = int(environment(service(name))[balancer.ports[balancer.health_port]])
        for entry in published:
            fields = without_interpolations(str(entry)).split(":")
            assert len(fields) == 3, f"service {name}: publish {entry!r} as <address>:<port>:<container port>"
            assert fields[0] in ("127.0.0.1", "::1", "localhost"), (
                f"service {name}: {entry!r} publishes on {fields[0]!r} by default; loopback unless configured")
            assert int(fields[2]) == webhook_port, (
                f"service {name}: {entry!r} publishes container port {fields[2]}, but the webhook frontend "
                f"listens on {webhook_port} ({balancer.ports[balancer.health_port]})")


# --------------------------------------------------------------------------- the env file


def test_the_env_example_documents_each_key_and_holds_no_secret() -> None:
    previous = ""
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            key = stripped.partition("=")[0]
            assert previous.startswith("#"), (
                f"deploy/salon.env.example: {key} has no comment right above it saying what it is")
            if SECRET_NAME.search(key):
                assert env_example()[key] == "", f"deploy/salon.env.example: {key} is a secret; leave it empty"
        previous = stripped


def test_compose_interpolates_only_documented_variables() -> None:
    used = {name for text in strings(compose()) for name in interpolated(text)}
    missing = used - set(env_example())
    assert not missing, (
        f"deploy/compose.yml reads {sorted(missing)} from deploy/salon.env (--env-file), which "
        "deploy/salon.env.example does not document")


def test_each_setting_has_one_source() -> None:
    for name, svc in services().items():
        if not env_files(svc):
            continue
        for key, value in environment(svc).items():
            if key not in env_example():
                continue
            assert interpolated(value) == [key], (
                f"service {name}: {key} is in deploy/salon.env.example and also set to {value!r} in "
                f"compose.yml; keep one source (or pass the same variable: ${{{key}:?…}})")


# --------------------------------------------------------------------------- the Dockerfile


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]]


@cache
def dockerfile_stages() -> tuple[dict[str, str], list[Stage]]:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    logical: list[str] = []
    current = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip():
            logical.append(current.strip())
        current = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = rest.split()
            image = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m.group(1), m.group(0)),
                           [w for w in words if not w.startswith("--")][0])
            name = words[-1] if len(words) >= 3 and words[-2].upper() == "AS" else None
            stages.append(Stage(image, name, []))
        elif not stages and keyword == "ARG":
            key, _, default = rest.partition("=")
            args[key.strip()] = default.strip()
        elif stages:
            stages[-1].instructions.append((keyword, rest.strip()))
    return args, stages


def test_the_image_is_multi_stage_python_310_and_installs_from_the_constraints() -> None:
    _, stages = dockerfile_stages()
    assert len(stages) >= 2, "deploy/Dockerfile must be multi-stage (a build stage, then the runtime)"
    names = set()
    for stage in stages:
        assert stage.image in names or stage.image == "python:3.10-slim-bookworm", (
            f"deploy/Dockerfile: stage from {stage.image!r}; Salon runs on python:3.10-slim-bookworm")
        if stage.name:
            names.add(stage.name)
    runs = [rest for stage in stages for keyword, rest in stage.instructions if keyword == "RUN"]
    assert any(re.search(r"pip install -c constraints\.txt -r requirements\.in", run) for run in runs), (
        "deploy/Dockerfile does not install `-c constraints.txt -r requirements.in`")
    assert any(re.search(r"pip install [^&]*--no-deps[^&]* \.(\s|$)", run) for run in runs), (
        "deploy/Dockerfile does not install the project itself (`pip install --no-deps .`)")
    final = stages[-1]
    assert any(keyword == "COPY" and rest.startswith("--from=") for keyword, rest in final.instructions), (
        "deploy/Dockerfile: the runtime stage copies nothing from the build stage")


def test_the_image_ends_as_a_non_root_user_with_the_venv_first_and_no_health_check() -> None:
    _, stages = dockerfile_stages()
    final = stages[-1].instructions
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users, "deploy/Dockerfile: the runtime stage never sets USER (it would run as root)"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"deploy/Dockerfile ends as USER {users[-1]!r}; it must be non-root"
    assert [keyword for keyword, _ in final].index("USER") > max(
        i for i, (keyword, _) in enumerate(final) if keyword == "RUN"), (
        "deploy/Dockerfile: a RUN comes after the last USER; the image must end as the non-root user")
    all_instructions = [keyword for stage in stages for keyword, _ in stage.instructions]
    assert "HEALTHCHECK" not in all_instructions, (
        "deploy/Dockerfile sets a HEALTHCHECK; each service's lives in deploy/compose.yml")
    venvs = {m.group(1) for stage in stages for keyword, rest in stage.instructions if keyword == "RUN"
             for m in [re.search(r"-m venv (\S+)", rest)] if m}
    assert venvs, "deploy/Dockerfile creates no venv"
    env_text = " ".join(rest for keyword, rest in final if keyword == "ENV")
    path = re.search(r"PATH=(\S+)", env_text)
    assert path and any(path.group(1).startswith(f"{venv}/bin:") for venv in venvs), (
        f"deploy/Dockerfile: PATH must start with the venv's bin ({sorted(venvs)}), got {path and path.group(1)!r}")


def _final_workdir_and_copies() -> tuple[str, set[str]]:
    _, stages = dockerfile_stages()
    final = stages[-1].instructions
    workdirs = [rest for keyword, rest in final if keyword == "WORKDIR"]
    assert workdirs, "deploy/Dockerfile: the runtime stage has no WORKDIR (the project root of the commands)"
    copied: set[str] = set()
    for keyword, rest in final:
        if keyword != "COPY" or rest.startswith("--from="):
            continue
        words = [w for w in shlex.split(rest) if not w.startswith("--")]
        copied |= {w.rstrip("/") for w in words[:-1]}
    return workdirs[-1], copied


def test_the_image_holds_every_file_a_process_needs_and_imports_salon_from_there() -> None:
    workdir, copied = _final_workdir_and_copies()
    needed = {"salon", "connectors", "actions", "components", "data", "deploy",
              "domain.yml", "config.yml", "templates.yml"}
    for process in processes().values():
        needed |= {word for word in process.command.split() if "/" in word and (ROOT / word).is_file()}
    for path in sorted(needed):
        assert any(path == c or path.startswith(c + "/") for c in copied), (
            f"deploy/Dockerfile does not copy {path} into the runtime image (copied: {sorted(copied)})")
    _, stages = dockerfile_stages()
    env_text = " ".join(rest for keyword, rest in stages[-1].instructions if keyword == "ENV")
    pythonpath = re.search(r"PYTHONPATH=(\S+)", env_text)
    assert pythonpath and pythonpath.group(1) == workdir, (
        f"deploy/Dockerfile: PYTHONPATH must be {workdir} (salon/config.py finds templates.yml, data/ "
        "and var/ beside the salon package it was imported from)")
    model = env_example().get("SALON_MODEL", "")
    assert model.startswith("models/"), f"SALON_MODEL={model!r} must name a file under models/"
    for process in processes().values():
        if not process.salon:
            continue
        for name in service_names(process):
            volumes = [str(v) for v in service(name).get("volumes") or []]
            assert f"../models:{workdir}/models:ro" in volumes, (
                f"service {name} does not mount the project's models/ read-only at {workdir}/models")


def test_no_secret_is_baked_into_the_image() -> None:
    args, stages = dockerfile_stages()
    declared = set(args)
    for stage in stages:
        for keyword, rest in stage.instructions:
            if keyword in ("ENV", "ARG"):
                declared |= {m.group(1) for m in re.finditer(r"([A-Za-z_][A-Za-z0-9_]*)=", rest)}
                if keyword == "ARG" and "=" not in rest:
                    declared.add(rest.strip())
    secret = sorted(name for name in declared if SECRET_NAME.search(name))
    assert not secret, f"deploy/Dockerfile declares {secret}: secrets come from the environment at run time"
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    named = sorted(key for key in env_example() if SECRET_NAME.search(key) and key in text)
    assert not named, f"deploy/Dockerfile names {named}: no secret belongs in the image"


def test_the_dockerignore_keeps_state_models_and_secrets_out_but_not_what_is_copied() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.strip().startswith("#")]

    def ignored(path: str) -> bool:
        return any(fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") for p in patterns)

    for path in (".venv", "var", "results", "models", ".git", "deploy/salon.env"):
        assert ignored(path), f".dockerignore lets {path} into the build context"
    _, copied = _final_workdir_and_copies()
    _, stages = dockerfile_stages()
    for stage in stages:
        for keyword, rest in stage.instructions:
            if keyword == "COPY" and not rest.startswith("--from="):
                copied |= {w.rstrip("/") for w in shlex.split(rest)[:-1] if not w.startswith("--")}
    blocked = sorted(path for path in copied if ignored(path))
    assert not blocked, f".dockerignore leaves out {blocked}, which deploy/Dockerfile copies"


# --------------------------------------------------------------------------- haproxy.cfg


@cache
def haproxy_sections() -> dict[tuple[str, str], list[list[str]]]:
    """(kind, name) → the section's lines, each split into words."""
    sections: dict[tuple[str, str], list[list[str]]] = {}
    current: list[list[str]] | None = None
    for line in (DEPLOY / "haproxy.cfg").read_text(encoding="utf-8").splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if not line[0].isspace():
            kind, name = words[0], words[1] if len(words) > 1 else ""
            current = sections.setdefault((kind, name), [])
            continue
        if current is not None:
            current.append(words)
    return sections


def test_haproxy_has_one_server_per_rasa_replica_in_each_backend() -> None:
    rasa = processes()["rasa"]
    backends = {name: lines for (kind, name), lines in haproxy_sections().items() if kind == "backend"}
    assert backends, "deploy/haproxy.cfg has no backend"
    for backend, lines in backends.items():
        servers = [words[1] for words in lines if words[0] == "server"]
        assert servers == service_names(rasa), (
            f"deploy/haproxy.cfg backend {backend}: servers {servers}, but deploy/processes.yml runs "
            f"{rasa.replicas} rasa replica(s), the services {service_names(rasa)}")


def test_haproxy_sends_each_balanced_port_to_that_port_of_each_replica() -> None:
    rasa = processes()["rasa"]
    balancer = processes()["balancer"]
    env = environment(service(service_names(balancer)[0]))
    backends = {name: lines for (kind, name), lines in haproxy_sections().items() if kind == "backend"}
    for port_name in rasa.balanced:
        assert port_name in backends, f"deploy/haproxy.cfg has no backend {port_name!r} (rasa's balanced ports)"
        for words in backends[port_name]:
            if words[0] != "server":
                continue
            server, address = words[1], words[2].strip('"')
            variable = COMMAND_VARIABLE.fullmatch(address)
            assert variable, f"deploy/haproxy.cfg: server {server} has address {address!r}, not ${{VAR}}"
            expected_port = environment(service(server)).get(rasa.ports[port_name])
            assert env.get(variable.group(1)) == f"{server}:{expected_port}", (
                f"balancer: {variable.group(1)}={env.get(variable.group(1))!r}, but backend {port_name} "
                f"must reach {server} on its {rasa.ports[port_name]} ({server}:{expected_port})")
    checked = [words for words in backends[rasa.health_port] if words[:2] == ["option", "httpchk"]]
    assert checked and checked[0][-1] == rasa.health_path, (
        f"deploy/haproxy.cfg backend {rasa.health_port}: its check must GET {rasa.health_path}, "
        f"rasa's health path in deploy/processes.yml")


def test_every_variable_haproxy_uses_is_in_the_balancers_env() -> None:
    balancer = processes()["balancer"]
    used = set(COMMAND_VARIABLE.findall((DEPLOY / "haproxy.cfg").read_text(encoding="utf-8")))
    missing = used - process_env(balancer)
    assert not missing, f"deploy/haproxy.cfg uses {sorted(missing)}, not in the balancer's env (deploy/processes.yml)"
    for name in service_names(balancer):
        unset = used - set(environment(service(name)))
        assert not unset, f"service {name} does not set {sorted(unset)}, which deploy/haproxy.cfg uses"
    bound = set()
    for (kind, _), lines in haproxy_sections().items():
        if kind == "frontend":
            bound |= {name for words in lines if words[0] == "bind" for name in COMMAND_VARIABLE.findall(words[1])}
    unbound = set(balancer.ports.values()) - bound
    assert not unbound, f"deploy/haproxy.cfg binds no frontend to {sorted(unbound)} (the balancer's ports)"
