"""The certificates of a run's wss:// targets: a CA made for the run (trustme), and a server certificate it signs
for the loopback names. Nothing leaves the machine, and nothing but the run's own clients trusts the CA."""

from __future__ import annotations

import ssl
import tempfile
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

import trustme

from bench.load.tls import client_context

LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class Certs:
    ca: Path  # what clients trust (PEM)
    cert: Path  # the server's certificate (PEM), for LOOPBACK_NAMES
    key: Path  # its private key (PEM)

    def server_env(self) -> dict[str, str]:
        """What a server process needs to serve wss:// and https:// (CONTRACT.md "As browsers connect")."""
        return {"CHAT_TLS_CERT": str(self.cert), "CHAT_TLS_KEY": str(self.key)}

    @cached_property
    def client_context(self) -> ssl.SSLContext:
        """One context for every client of the run (a storm's 5,000 members, each readiness probe): the CA is read
        once."""
        return client_context(str(self.ca))


def make(directory: Path) -> Certs:
    ca = trustme.CA(organization_name="chat-bench run CA")
    leaf = ca.issue_cert(*LOOPBACK_NAMES)
    certs = Certs(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    ca.cert_pem.write_to_path(str(certs.ca))
    leaf.cert_chain_pems[0].write_to_path(str(certs.cert))
    leaf.private_key_pem.write_to_path(str(certs.key))
    certs.key.chmod(0o600)
    return certs


@cache
def for_this_run() -> Certs:
    """One CA and certificate per bench process, in a directory that goes when it ends."""
    directory = tempfile.TemporaryDirectory(prefix="chat-bench-tls-")
    certs = make(Path(directory.name))
    _keep.append(directory)
    return certs


def context_for(url: str) -> ssl.SSLContext | None:
    """What a client of the bench's own process trusts at `url`: the run's CA for https:// and wss://, else None."""
    return for_this_run().client_context if url.startswith(("https://", "wss://")) else None


_keep: list[tempfile.TemporaryDirectory] = []  # removed at exit, with the process
