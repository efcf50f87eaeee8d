"""Kernel-side evidence for the loss autopsy: socket queue depths and TCP counters.

A full receive buffer does not lose data: TCP advertises a zero window and the sender's
Send-Q grows instead. These readings show whether that is what happened in a run.
"""

from __future__ import annotations

from pathlib import Path

# TcpExt counters that tell flow control (zero windows) from real drops in the kernel
TCP_COUNTERS = ("TCPToZeroWindowAdv", "TCPWantZeroWindowAdv", "TCPFromZeroWindowAdv", "TCPZeroWindowDrop",
                "TCPRcvQDrop", "TCPBacklogDrop", "PruneCalled", "RcvPruned", "TCPAbortOnMemory")


def tcp_counters() -> dict[str, int]:
    """The machine's TcpExt counters above, plus Tcp RetransSegs (cumulative since boot)."""
    found: dict[str, int] = {}
    for name in ("/proc/net/netstat", "/proc/net/snmp"):
        try:
            lines = Path(name).read_text().splitlines()
        except OSError:
            continue
        for head, values in zip(lines[::2], lines[1::2], strict=False):
            keys, nums = head.split()[1:], values.split()[1:]
            for key, num in zip(keys, nums, strict=False):
                if key in TCP_COUNTERS or (head.startswith("Tcp:") and key == "RetransSegs"):
                    found[key] = int(num)
    return found


def counter_delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items()}


def socket_queues(server_ports: set[int]) -> dict[str, int]:
    """Bytes queued in established sockets: the servers' Send-Q/Recv-Q and their clients' Recv-Q; and how
    many sockets the servers have established (handshake done or not)."""
    q = {"server_send_q": 0, "server_send_q_max": 0, "server_recv_q": 0, "client_recv_q": 0,
         "client_recv_q_max": 0, "server_sockets": 0}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] != "01":  # ESTABLISHED
                continue
            local, remote = int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16)
            tx, rx = (int(v, 16) for v in f[4].split(":"))
            if local in server_ports:
                q["server_sockets"] += 1
                q["server_send_q"] += tx
                q["server_send_q_max"] = max(q["server_send_q_max"], tx)
                q["server_recv_q"] += rx
            elif remote in server_ports:
                q["client_recv_q"] += rx
                q["client_recv_q_max"] = max(q["client_recv_q_max"], rx)
    return q
