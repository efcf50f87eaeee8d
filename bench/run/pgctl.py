"""A private PostgreSQL cluster for the bench and the tests: initdb in a temporary directory, a free
loopback port, the server stopped by its PID at the end. initdb refuses to run as root, so as root
the cluster belongs to the distribution's `postgres` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.run.procs import free_port, stop_process

HOW_TO_GET_IT = ("PostgreSQL is not installed: `sudo apt-get install postgresql` (the bench and the tests start a "
                 "private cluster), or set CHAT_DATABASE_URL=postgres://user:password@host:port/database")


def bin_dir() -> Path | None:
    """The newest installed PostgreSQL's binaries (Debian: /usr/lib/postgresql/<major>/bin), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def external_url() -> str | None:
    url = os.environ.get("CHAT_DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


def counts_statements(bin_path: Path) -> bool:
    """Whether this PostgreSQL ships pg_stat_statements (postgresql-contrib, in Debian's postgresql): a cluster
    of it loads the extension, unless CREATE EXTENSION fails (PostgresCluster.no_statements says why)."""
    return (pkglibdir(bin_path) / "pg_stat_statements.so").exists()


def pkglibdir(bin_path: Path) -> Path:
    """Where this PostgreSQL keeps its extensions: its own pg_config says (one on PATH may be another
    version's), else Debian's layout, <major>/lib beside <major>/bin."""
    pg_config = bin_path / "pg_config"
    if pg_config.exists():
        try:
            found = subprocess.run([str(pg_config), "--pkglibdir"], capture_output=True, text=True, timeout=10,
                                   check=True).stdout.strip()
            if found:
                return Path(found)
        except (OSError, subprocess.SubprocessError):
            pass
    return bin_path.parent / "lib"


class PostgresCluster:
    """One cluster: start() (initdb the first time), stop(), start() again on the same port and data."""

    def __init__(self, bin_path: Path):
        self.bin = bin_path
        self.user = "postgres" if os.geteuid() == 0 else None  # initdb refuses root
        self.dir = Path(tempfile.mkdtemp(prefix="chat-pg-"))
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        # pg_stat_statements counts each statement and its time: the queries a handshake or a stored message
        # costs, as the database saw them; without it the cluster runs all the same, and says so
        self.statements = counts_statements(bin_path)
        self.no_statements = "" if self.statements else "pg_stat_statements is not installed (postgresql-contrib)"
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.dir / "data"), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--locale=C", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/chat"

    def _run(self, program: str, *args: str) -> None:
        subprocess.run([str(self.bin / program), *args], user=self.user, check=True, cwd=self.dir,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self, timeout: float = 30.0, cpus: set[int] | None = None) -> PostgresCluster:
        log = open(self.dir / "postgres.log", "ab")
        # BEGIN, COMMIT and SET left out of the counts
        counting = ["-c", "shared_preload_libraries=pg_stat_statements", "-c", "pg_stat_statements.track_utility=off"]
        self.process = subprocess.Popen(
            [str(self.bin / "postgres"), "-D", str(self.dir / "data"), "-p", str(self.port),
             "-k", str(self.dir), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200",
             *(counting if self.statements else [])],
            user=self.user, cwd=self.dir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        log.close()
        deadline = time.monotonic() + timeout
        while subprocess.run([str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]).returncode:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not start:\n{self.log_tail()}")
            time.sleep(0.1)  # poll interval of the readiness probe
        if not (self.dir / "created").exists():
            self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "chat")
            if self.statements:
                try:
                    self._run("psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
                              "-U", "postgres", "-d", "chat", "-c", "CREATE EXTENSION pg_stat_statements")
                except subprocess.CalledProcessError as e:
                    self.statements = False
                    why = (e.stderr or b"").decode(errors="replace").strip().splitlines()
                    self.no_statements = "CREATE EXTENSION pg_stat_statements failed" + (f": {why[0]}" if why else "")
            (self.dir / "created").touch()
        return self

    def stop(self) -> None:
        """SIGTERM: PostgreSQL's smart shutdown would wait for clients; SIGINT (fast) does not."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(2)
            stop_process(self.process)
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.dir / "postgres.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
