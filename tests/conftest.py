"""Fixtures over real servers: every test that takes `server` (or `servers`) runs once per target
(tests/servers.py TARGET_NAMES, the target's name as its id); the servers of a target stop when
pytest moves on to the next. `CHAT_TEST_TARGETS=django,fastapi` narrows the targets. The helpers
the tests call are in tests/servers.py and tests/clients.py.
"""

from __future__ import annotations

import re
import resource
import uuid
from collections.abc import Callable

import pytest
import pytest_asyncio

from bench.run.serverproc import ServerProcess
from tests.clients import Members
from tests.servers import TARGET_NAMES, ServerPool


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "server: starts real server processes (loopback)")
    config.addinivalue_line("markers", "slow_consumer: a member that never reads (bounded, ~10 s each)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # 500 connections, both ends in one box
    wanted = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


@pytest.fixture(scope="session", params=TARGET_NAMES)
def target(request: pytest.FixtureRequest) -> str:
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
