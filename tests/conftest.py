"""Fixtures over real servers: every test that takes `server` (or `servers`, or `target`) runs once per
target it covers (tests/servers.py TARGET_NAMES, the target's name as its id): all of them, or those
its `targets` marker names (`@pytest.mark.targets("django", "fastapi", why="...")`, on the test or as
a module's pytestmark). The servers of a target stop when pytest moves on to the next.
`CHAT_TEST_TARGETS=django,fastapi` narrows the targets. The helpers the tests call are in
tests/servers.py and tests/clients.py.
"""

from __future__ import annotations

import re
import resource
import uuid
from collections.abc import Callable

import pytest
import pytest_asyncio

from bench.run.serverproc import ServerProcess
from bench.targets import TARGETS
from tests.bench_runs import TinyBenches
from tests.clients import Members
from tests.servers import TARGET_NAMES, ServerPool


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "server: starts real server processes (loopback)")
    config.addinivalue_line("markers", "slow_consumer: a member that never reads (bounded, ~10 s each)")
    config.addinivalue_line("markers", "targets(*names, why): the only targets the test covers, and why")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # 500 connections, both ends in one box
    wanted = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize `target` over the targets of this run the test covers (its `targets` marker, else all),
    unless the test parametrizes `target` itself (a name, no server)."""
    if "target" not in metafunc.fixturenames or any(
            "target" in argnames(mark) for mark in metafunc.definition.iter_markers("parametrize")):
        return
    mark = metafunc.definition.get_closest_marker("targets")  # the test's own, else its module's
    if mark is None:
        metafunc.parametrize("target", TARGET_NAMES, indirect=True)
        return
    if unknown := set(mark.args) - TARGETS.keys():
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: no target {sorted(unknown)} in bench/targets.py")
    if not mark.kwargs.get("why"):
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: say why it covers only {list(mark.args)} (why=...)")
    covered = [t for t in TARGET_NAMES if t in mark.args]  # in the run's order, so ids and grouping stay
    metafunc.parametrize("target", covered or [pytest.param(None, id="none", marks=pytest.mark.skip(
        reason=f"none of its targets ({', '.join(mark.args)}) is in this run: CHAT_TEST_TARGETS, "
               "or no redis-server or PostgreSQL here"))], indirect=True)


def argnames(parametrize: pytest.Mark) -> list[str]:
    names = parametrize.args[0] if parametrize.args else parametrize.kwargs["argnames"]
    return [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)


@pytest.fixture(scope="session")
def tiny_benches(tmp_path_factory: pytest.TempPathFactory):
    """The tiny suites' bench runs (tests/bench_runs.py), all started when a module first asks for its own."""
    benches = TinyBenches(tmp_path_factory.mktemp("tiny-benches"))
    yield benches
    benches.stop()


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> str:
    """The target under test (pytest_generate_tests parametrizes it)."""
    return request.param


@pytest.fixture(scope="session")
def servers(target: str, tmp_path_factory: pytest.TempPathFactory):
    pool = ServerPool(target, tmp_path_factory.mktemp(f"servers-{target}"))
    yield pool
    pool.stop_all()


@pytest.fixture(scope="session")
def server(servers: ServerPool) -> ServerProcess:
    """The target's server with the contract's default settings."""
    return servers.get()


@pytest.fixture(autouse=True)
def _servers_stay_up(request: pytest.FixtureRequest):
    yield
    if "servers" in request.fixturenames:
        request.getfixturevalue("servers").check_alive()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    pool = getattr(item, "funcargs", {}).get("servers")
    if report.failed and isinstance(pool, ServerPool):
        report.sections.append(("server logs", pool.log_tails()))
    return report


@pytest.fixture
def room_name(request: pytest.FixtureRequest) -> Callable[[], str]:
    """A factory of room names unique to this test (servers are shared by a target's tests)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name).strip("-")[:40]
    return lambda: f"{stem}-{uuid.uuid4().hex[:12]}"


@pytest_asyncio.fixture
async def members():
    group = Members()
    yield group
    await group.close_all()
