"""The bench's own PostgreSQL counts statements when it can, and runs all the same when it cannot: a
CREATE EXTENSION that fails leaves a working cluster that says why nothing is counted."""

from __future__ import annotations

import psycopg
import pytest

from bench.run.database import Database
from bench.run.pgctl import PostgresCluster, bin_dir, counts_statements

pytestmark = pytest.mark.skipif(bin_dir() is None, reason="no PostgreSQL binaries: a private cluster is needed")


class BrokenExtension(PostgresCluster):
    """A cluster whose CREATE EXTENSION fails, as on an installation without the extension's control file.
    (A library that is found but fails to load stops PostgreSQL itself: start() then fails, its log naming
    the library.)"""

    def _run(self, program: str, *args: str) -> None:
        super()._run(program, *(a.replace("pg_stat_statements", "no_such_extension") for a in args))


@pytest.fixture
def started():
    """start(kind): a private cluster of that class, started; every one is removed after the test."""
    if not counts_statements(bin_dir()):
        pytest.skip("this PostgreSQL ships no pg_stat_statements: nothing to count, nothing to fail")
    clusters: list[PostgresCluster] = []

    def start(kind: type[PostgresCluster] = PostgresCluster) -> PostgresCluster:
        clusters.append(cluster := kind(bin_dir()))
        return cluster.start()

    yield start
    for cluster in clusters:
        cluster.remove()


def test_a_failing_create_extension_leaves_a_running_cluster_without_counts(started):
    cluster = started(BrokenExtension)
    assert not cluster.statements and "CREATE EXTENSION pg_stat_statements failed" in cluster.no_statements
    assert "no_such_extension" in cluster.no_statements  # PostgreSQL's own reason, kept
    with psycopg.connect(cluster.url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert Database(cluster.url, "postgresql", "", cluster).statements() is None
    cluster.stop()
    cluster.start()  # again on the same data, still without counts
    assert not cluster.statements


def test_a_cluster_that_can_count_does(started):
    cluster = started()
    assert cluster.statements and not cluster.no_statements
    with psycopg.connect(cluster.url) as conn:
        conn.execute("SELECT 1")
    assert Database(cluster.url, "postgresql", "", cluster).statements() is not None
