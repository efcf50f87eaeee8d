"""Which PostgreSQL the app-mode tests use: a private cluster (bench/run/pgctl.py) when the
distribution's binaries are installed, else CHAT_DATABASE_URL if it is a postgres:// URL, else none
(those tests skip, saying how to get one; under CI they fail instead).
"""

from __future__ import annotations

import os

from bench.run.pgctl import HOW_TO_GET_IT, PostgresCluster, bin_dir, external_url


def postgres_for_tests() -> tuple[PostgresCluster | None, str]:
    """(cluster, url): a private cluster, started; else (None, CHAT_DATABASE_URL); else skip, or under CI fail."""
    import pytest

    binaries = bin_dir()
    if binaries is not None:
        cluster = PostgresCluster(binaries)
        return cluster.start(), cluster.url
    if external_url():
        return None, external_url()
    if os.environ.get("CI"):
        pytest.fail(HOW_TO_GET_IT + " (CI runs the PostgreSQL tests: .ci/run installs it)")
    pytest.skip(HOW_TO_GET_IT)
