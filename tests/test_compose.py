"""compose.yaml, checked statically (no Docker engine needed): it is valid, and its services are
bench/targets.py's Redis targets (same launchers, settings and process counts) plus Redis and
Locust master/workers.

Validation needs the `docker-compose` (v1) or `docker compose` (v2) client: without one that
test skips (`sudo apt-get install docker-compose`; .ci/run installs it). Reading the file needs
a YAML parser: PyYAML if this interpreter has it, else the compose tool's own (v2's JSON output,
or the Python interpreter docker-compose v1 runs on).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bench import ROOT
from bench.targets import REDIS_TARGETS, TARGETS

COMPOSE = ROOT / "compose.yaml"
REDIS_URL = "redis://redis:6379/0"  # the redis service, as the backends reach it
TO_JSON = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"


def compose_cli() -> list[str] | None:
    """The compose client that can run `config` here, or None."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def load_compose() -> dict:
    try:
        import yaml
    except ImportError:
        pass
    else:
        return yaml.safe_load(COMPOSE.read_text())
    cli = compose_cli()
    if cli == ["docker", "compose"]:
        out = subprocess.run([*cli, "-f", str(COMPOSE), "config", "--format", "json", "--no-interpolate"],
                             capture_output=True, text=True, cwd=ROOT)
        if out.returncode == 0:
            return json.loads(out.stdout)
    if cli == ["docker-compose"]:  # a Python program: its interpreter has PyYAML
        shebang = Path(shutil.which("docker-compose")).read_text(errors="replace").splitlines()[0]
        if shebang.startswith("#!") and "python" in shebang:
            out = subprocess.run(shebang[2:].split() + ["-c", TO_JSON], input=COMPOSE.read_text(),
                                 capture_output=True, text=True)
            if out.returncode == 0:
                return json.loads(out.stdout)
    pytest.skip("no YAML parser: PyYAML is not installed and no compose client is "
                "(`sudo apt-get install docker-compose`)")


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def contract_settings() -> set[str]:
    """The setting names in CONTRACT.md's settings table."""
    return set(re.findall(r"^\| `(CHAT_[A-Z_]+)` \|", (ROOT / "CONTRACT.md").read_text(), re.M))


def locust_options() -> set[str]:
    return set(re.findall(r'env_var="(CHAT_[A-Z_]+)"', (ROOT / "bench" / "locustfile.py").read_text()))


def test_compose_config_validates():
    cli = compose_cli()
    if cli is None:
        pytest.skip("no compose client (`sudo apt-get install docker-compose`, or Docker's compose plugin)")
    done = subprocess.run([*cli, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", REDIS_TARGETS)
def test_each_redis_target_is_a_service_started_the_same_way(compose, name):
    target, service = TARGETS[name], compose["services"].get(name)
    assert service is not None, f"compose.yaml has no service {name!r} for the target of that name"
    command = [str(part) for part in service["command"]]
    assert command[0] == "python" and command[1:] == target.command("0.0.0.0", 8000)[1:], command
    assert target.server_env(REDIS_URL).items() <= environment(service).items(), (
        f"{name}: compose environment {environment(service)} lacks the target's {target.server_env(REDIS_URL)}")
    assert service["deploy"]["replicas"] == target.processes
    assert "8000" in [str(p) for p in service["expose"]]
    assert "http://127.0.0.1:8000/healthz" in " ".join(service["healthcheck"]["test"])
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"


def test_backends_use_only_contract_settings_and_reach_the_redis_service(compose):
    known = contract_settings()
    assert {"CHAT_REDIS_URL", "CHAT_REDIS_LAYER", "CHAT_MEMBER_BACKLOG", "CHAT_LAYER_EXPIRY"} <= known
    redis = compose["services"]["redis"]
    assert "6379" in [str(p) for p in redis["command"]] and "ping" in redis["healthcheck"]["test"]
    for name in REDIS_TARGETS:
        env = environment(compose["services"][name])
        assert {k for k in env if k.startswith("CHAT_")} <= known, f"{name}: settings not in CONTRACT.md"
        assert env["CHAT_REDIS_URL"] == REDIS_URL


def test_locust_master_and_workers(compose):
    services = compose["services"]
    master, worker = services["locust-master"]["command"], services["locust-worker"]["command"]
    assert master[:5] == ["python", "-m", "locust", "-f", "bench/locustfile.py"] and "--master" in master
    assert worker[:5] == master[:5] and "--worker" in worker
    assert worker[worker.index("--master-host") + 1] == "locust-master"
    host = master[master.index("--host") + 1]
    assert any(f"http://{name}:8000" in host for name in REDIS_TARGETS), host
    assert set(environment(services["locust-master"])) <= locust_options()
    assert services["locust-worker"]["deploy"]["replicas"] >= 1


def test_published_ports_are_loopback_only(compose):
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            published = port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port.get('published')}"
            assert published.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
