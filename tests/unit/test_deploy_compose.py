"""deploy/docker-compose.yml, deploy/.env.example and the Dockerfile agree with pulso itself:
every PULSO_* variable is a real setting with a valid value, every pulso command and option
the services run exists, ports line up, images are pinned, health checks and start-up order
are declared. No Docker needed (``docker compose config`` runs when it is installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.main
import yaml

from pulso.cli import app
from pulso.config import ENV_PREFIX, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
PULSO_BUILT = "pulso:"  # the image the Dockerfile builds; every other image is pinned


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f".env.example: not NAME=value: {line!r}"
        assert name not in values, f".env.example sets {name} twice"
        values[name] = value.strip()
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} and $$ with the .env values."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        value = env.get(name)
        if op in (":-", "-"):
            return value if value else (arg or "")
        if op in (":?", "?"):
            assert value, f"{name} is required ({arg})"
            return value
        return value or ""

    return VARIABLE.sub(one, text).replace("$$", "$")


def services() -> dict[str, dict[str, Any]]:
    found = compose()["services"]
    assert isinstance(found, dict)
    return found


def pulso_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services().items() if "build" in s}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "write environment as a mapping"
    return {str(k): str(v) for k, v in env.items()}


def resolved_environment(service: dict[str, Any]) -> dict[str, str]:
    example = env_example()
    return {k: interpolate(v, example) for k, v in environment(service).items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service["command"]
    return cmd if isinstance(cmd, list) else str(cmd).split()


def click_command(args: list[str]) -> tuple[Any, dict[str, Any]]:
    """The pulso command ``args`` names, and its options parsed as the CLI would."""
    group: Any = typer.main.get_command(app)
    name, *rest = args
    assert name in group.commands, f"`pulso {name}` does not exist"
    cmd = group.commands[name]
    ctx = cmd.make_context(name, list(rest))
    return cmd, ctx.params


def option_default(command_name: str, option: str) -> Any:
    group: Any = typer.main.get_command(app)
    (param,) = [p for p in group.commands[command_name].params if p.name == option]
    return param.default


def container_ports(service: dict[str, Any]) -> set[int]:
    ports = set()
    for mapping in service.get("ports", []):
        ports.add(int(str(mapping).rsplit(":", 1)[1].split("/")[0]))
    return ports


# --- the tests ----------------------------------------------------------------------------


def test_the_stack_has_every_service() -> None:
    assert {
        "kafka",
        "postgres",
        "minio",
        "minio-init",
        "grafana",
        "api",
        "scheduler",
        "worker",
        "stream",
        "dashboard",
    } <= services().keys()


def test_every_pulso_variable_is_a_setting() -> None:
    fields = set(Settings.model_fields)
    used = {k for s in services().values() for k in environment(s) if k.startswith(ENV_PREFIX)}
    used |= {k for k in env_example() if k.startswith(ENV_PREFIX)}
    unknown = sorted(k for k in used if k.removeprefix(ENV_PREFIX).lower() not in fields)
    assert not unknown, f"not pulso settings: {unknown}"


def test_every_pulso_service_gets_valid_settings() -> None:
    for name, service in pulso_services().items():
        env = resolved_environment(service)
        overrides = {
            k.removeprefix(ENV_PREFIX).lower(): v
            for k, v in env.items()
            if k.startswith(ENV_PREFIX)
        }
        settings = load_settings(_env_file=None, **overrides)  # a bad value raises ConfigError
        if name != "dashboard":
            assert settings.profile == "cluster", name
            assert settings.bus.kind == "kafka" and settings.store.kind == "postgresql", name
            assert settings.pii_key is not None and settings.pii_key.get_secret_value(), name


def test_a_bad_setting_would_be_caught() -> None:
    """The check above can fail: a wrong value in compose is a ConfigError naming it."""
    from pulso.errors import ConfigError

    with pytest.raises(ConfigError, match="PULSO_BUS_URL"):
        load_settings(_env_file=None, bus_url="kafka://kafka")  # no port


def test_commands_and_options_exist() -> None:
    for name, service in pulso_services().items():
        _, params = click_command(command(service))  # unknown options raise here
        if name in ("api", "scheduler"):
            assert params["profile"] == "cluster" and params["pipeline"] is False, name
            assert params["host"] == "0.0.0.0", f"{name} must listen beyond the container"
    _, api = click_command(command(services()["api"]))
    assert not (api["reports"] or api["etl"] or api["alerts"] or api["archive"]), (
        "the scalable API runs no scheduler thread: only the scheduler service does"
    )
    _, scheduler = click_command(command(services()["scheduler"]))
    assert (
        scheduler["reports"] and scheduler["etl"] and scheduler["alerts"] and scheduler["archive"]
    )
    _, worker = click_command(command(services()["worker"]))
    assert worker["role"] == "facts", "scaled workers must leave the stateful processors out"
    _, stream = click_command(command(services()["stream"]))
    assert stream["role"] == "state" and stream["group"] == worker["group"]
    assert services()["stream"]["deploy"]["replicas"] >= 2  # one elected, hot standbys
    assert services()["worker"]["deploy"]["replicas"] >= 1


def test_ports_agree_with_the_commands_and_settings() -> None:
    svc = services()
    _, api = click_command(command(svc["api"]))
    assert api["port"] == option_default("up", "port") == 8000
    assert api["port"] in container_ports(svc["api"])
    assert f":{api['port']}/" in " ".join(svc["api"]["healthcheck"]["test"])

    _, dash = click_command(command(svc["dashboard"]))
    assert dash["port"] == option_default("dashboard", "port") == 8501
    assert dash["port"] in container_ports(svc["dashboard"])
    assert f":{dash['port']}/" in " ".join(svc["dashboard"]["healthcheck"]["test"])
    target = urlsplit(dash["api"])
    assert target.hostname == "api" and target.port == api["port"]

    assert 3000 in container_ports(svc["grafana"])
    grafana_env = resolved_environment(svc["grafana"])
    assert grafana_env["GRAFANA_DB_HOST"] == "postgres" and grafana_env["GRAFANA_DB_PORT"] == "5432"

    env = resolved_environment(svc["worker"])
    store = urlsplit(env["PULSO_STORE_URL"])
    assert (store.hostname, store.port) == ("postgres", 5432)
    assert 5432 in container_ports(svc["postgres"])
    kafka = resolved_environment(svc["kafka"])
    (broker,) = env["PULSO_BUS_URL"].removeprefix("kafka://").split(",")
    assert broker == "kafka:9092"
    assert f"PLAINTEXT://{broker}" in kafka["KAFKA_ADVERTISED_LISTENERS"]
    assert "PLAINTEXT://:9092" in kafka["KAFKA_LISTENERS"]
    assert "9092" in " ".join(svc["kafka"]["healthcheck"]["test"])
    s3 = urlsplit(env["PULSO_S3_ENDPOINT_URL"])
    assert (s3.hostname, s3.port) == ("minio", 9000) and 9000 in container_ports(svc["minio"])
    public = urlsplit(resolved_environment(svc["api"])["PULSO_PUBLIC_URL"])
    assert str(public.port) == env_example()["API_HOST_PORT"]


def test_secrets_and_credentials_line_up() -> None:
    svc = services()
    example = env_example()
    worker = resolved_environment(svc["worker"])
    store = urlsplit(worker["PULSO_STORE_URL"])
    postgres = resolved_environment(svc["postgres"])
    assert store.username == postgres["POSTGRES_USER"]
    assert store.password == postgres["POSTGRES_PASSWORD"]
    assert store.path == f"/{postgres['POSTGRES_DB']}"
    minio = resolved_environment(svc["minio"])
    assert worker["PULSO_S3_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
    assert worker["PULSO_S3_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
    bucket = resolved_environment(svc["minio-init"])["MINIO_BUCKET"]
    for url in (worker["PULSO_BUCKET_URL"], worker["PULSO_ARCHIVE_URL"]):
        assert urlsplit(url).netloc == bucket
    grafana = resolved_environment(svc["grafana"])
    assert grafana["GRAFANA_DB_USER"] == postgres["GRAFANA_DB_USER"]
    assert grafana["GRAFANA_DB_NAME"] == postgres["POSTGRES_DB"]
    # the same PII key everywhere, and required (no silent random key per container)
    keys = {resolved_environment(s).get("PULSO_PII_KEY") for s in pulso_services().values()}
    keys.discard(None)
    assert keys == {example["PULSO_PII_KEY"]}
    assert "PULSO_PII_KEY:?" in COMPOSE_FILE.read_text(encoding="utf-8")


def test_env_example_covers_every_variable_compose_reads() -> None:
    referenced = {m.group(1) for m in VARIABLE.finditer(COMPOSE_FILE.read_text(encoding="utf-8"))}
    missing = sorted(referenced - env_example().keys())
    assert not missing, f"deploy/.env.example lacks {missing}"


def test_images_are_pinned() -> None:
    for name, service in services().items():
        image = service["image"]
        if "build" in service:
            assert image.startswith(PULSO_BUILT), name
            continue
        repo, sep, tag = image.rpartition(":")
        assert sep and repo and tag and tag != "latest" and re.search(r"\d", tag), (
            f"{name}: pin {image!r} to a version"
        )


def test_health_checks_and_start_order() -> None:
    svc = services()
    for name, service in svc.items():
        if service.get("restart") == "no":  # a one-shot job
            continue
        check = service.get("healthcheck")
        assert check and check.get("test") and check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert {"interval", "timeout", "retries"} <= check.keys(), name
    for name, service in svc.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for other, rule in depends.items():
            assert other in svc, f"{name} depends on unknown {other}"
            wanted = (
                "service_completed_successfully"
                if svc[other].get("restart") == "no"
                else ("service_healthy")
            )
            assert rule["condition"] == wanted, (name, other)
    for name in pulso_services():
        if name != "dashboard":
            assert {"kafka", "postgres", "minio-init"} <= svc[name]["depends_on"].keys(), name


def test_volumes_and_mounts_exist() -> None:
    top = compose()
    declared = set(top.get("volumes") or {})
    for name, service in services().items():
        for mount in service.get("volumes", []):
            source = str(mount).split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
    assert (DEPLOY / "postgres" / "grafana-reader.sh").stat().st_mode & 0o111, "must be executable"


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    assert any(ln.startswith("RUN pip install .") for ln in lines)
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    for line in lines:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
    assert 'ENTRYPOINT ["pulso"]' in lines
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert {"!pyproject.toml", "!README.md", "!pulso/"} <= set(ignore)
    for name in pulso_services():
        build = services()[name]["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == ROOT / "Dockerfile"


def test_docker_compose_config() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed")
    probe = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=30, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"the docker compose plugin is not installed ({probe.stderr.strip()[:80]})")
    done = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE_FILE), "--env-file", str(ENV_EXAMPLE), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
