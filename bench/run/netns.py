"""Hosts on one machine: network namespaces joined by a veth bridge, each with an address of its own, so that a
replica, Redis and a Locust worker talk over a network hop (ARP, a bridge, optionally a delay), not loopback.

The addresses are in 127.77.0.0/24: loopback's block, routed only between these namespaces (each interface
`route_localnet`), so nothing here can reach another machine. Making namespaces takes CAP_NET_ADMIN and the
`ip` tool (iproute2); where either is missing `unavailable()` says why, and the caller skips.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass, field

SUBNET = "127.77.0"  # the bridge is .1 (the root namespace: the bench's master); hosts from .2


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def unavailable() -> str | None:
    """Why hosts cannot be made here (one is made and removed to find out), or None."""
    if not shutil.which("ip"):
        return "no `ip` tool (iproute2) to make network namespaces"
    try:
        with Hosts(["probe"]):
            pass
    except (subprocess.CalledProcessError, OSError) as failed:
        said = failed.stderr.strip() if isinstance(failed, subprocess.CalledProcessError) and failed.stderr else failed
        return f"cannot make network namespaces on a bridge here ({said}); it takes CAP_NET_ADMIN"
    return None


@dataclass
class Hosts:
    """Named hosts, each a namespace with one address on a bridge in the root namespace (which the bench's own
    processes reach them from, at `bridge_address`). `delay_ms`: each host's link delays what it sends (netem),
    when the kernel has it (`delayed` says whether it took). Use as a context manager: everything is removed."""

    names: list[str]
    delay_ms: float = 0.0
    tag: str = field(default_factory=lambda: f"cb{secrets.token_hex(2)}")  # interface names hold 15 characters
    delayed: bool = False
    made: list[tuple[str, str]] = field(default_factory=list)  # ("netns" | "link", name), in the order made

    @property
    def bridge(self) -> str:
        return f"{self.tag}br"

    @property
    def bridge_address(self) -> str:
        return f"{SUBNET}.1"

    def address(self, name: str) -> str:
        return f"{SUBNET}.{self.names.index(name) + 2}"

    def namespace(self, name: str) -> str:
        return f"{self.tag}{name}"

    def command(self, name: str, command: list[str]) -> list[str]:
        """`command` run on host `name` (`ip netns exec` enters the namespace, then execs it: the same PID)."""
        return ["ip", "netns", "exec", self.namespace(name), *command]

    def __enter__(self) -> Hosts:
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            self.made.append(("link", self.bridge))
            self._local(self.bridge)
            _ip("addr", "add", f"{self.bridge_address}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for i, name in enumerate(self.names):
                ns, outside, inside = self.namespace(name), f"{self.tag}v{i}", f"{self.tag}h{i}"
                _ip("netns", "add", ns)
                self.made.append(("netns", ns))
                _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
                self.made.append(("link", outside))
                _ip("link", "set", outside, "master", self.bridge)
                _ip("link", "set", outside, "up")
                _ip("link", "set", inside, "netns", ns)
                inns = ["-n", ns]
                _ip(*inns, "link", "set", "lo", "up")
                subprocess.run(self.command(name, ["sh", "-c", "for i in all " + inside + "; do echo 1 > "
                                                   "/proc/sys/net/ipv4/conf/$i/route_localnet; done"]),
                               check=True, capture_output=True, text=True)
                _ip(*inns, "addr", "add", f"{self.address(name)}/24", "dev", inside)
                _ip(*inns, "link", "set", inside, "up")
                route = subprocess.run(["ip", "route", "get", self.address(name)], capture_output=True, text=True)
                if f"dev {self.bridge}" not in route.stdout:  # else it would stay on this namespace's loopback
                    raise OSError(f"{self.address(name)} is not routed over the bridge: {route.stdout.strip()}")
                if self.delay_ms:
                    self.delayed = subprocess.run(
                        ["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", inside, "root", "netem", "delay",
                         f"{self.delay_ms}ms"], capture_output=True).returncode == 0
        except BaseException:
            self.__exit__()
            raise
        return self

    def _local(self, interface: str) -> None:
        with open(f"/proc/sys/net/ipv4/conf/{interface}/route_localnet", "w") as f:
            f.write("1")

    def __exit__(self, *_: object) -> None:
        """Remove what this made, and nothing else (a veth pair goes with either end; a namespace with its end)."""
        for kind, name in reversed(self.made):
            subprocess.run(["ip", kind, "del", name], capture_output=True)
        self.made.clear()
