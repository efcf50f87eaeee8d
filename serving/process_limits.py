"""What both hardened launchers do to their own process (django_chat/daphne_fixes.py, uvicorn_fixes.py):
raise the fd limit and size the connection limit from it, and have glibc return large freed blocks.
A server as it ships (CHAT_HARDENING=off) does neither."""

import ctypes
import fcntl
import resource
import termios

FD_RESERVE = 64  # descriptors kept for what is not a client: logs, Redis, the database, the listener
# A request's line and headers, on both hardened edges (uvicorn_fixes, django_chat/daphne_fixes): uvicorn's own h11
# default, which httptools lacks, and Twisted's total, past which it answers 400 (or, for one line, nothing)
MAX_HEAD_BYTES = 16 * 1024
RETRY_AFTER_S = 1  # what a handshake refused past the pending bound is told to wait (HTTP's Retry-After)


def connection_bound(wanted: int) -> int:
    """Raise the soft fd limit as far as the system allows; the connections it leaves room for (wanted, 0: all):
    the limit less twice the reserve, since past the limit the excess may take one reserve before it is refused."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    top = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < top:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))
            soft = top
        except (ValueError, OSError):  # above the kernel's nr_open: keep the soft limit
            pass
    fd_bound = max(16, soft - 2 * FD_RESERVE)
    return min(wanted or fd_bound, fd_bound)


def return_freed_memory() -> None:
    """glibc raises its mmap threshold to the largest block freed (up to 32 MiB), so after one large
    message every payload comes from the heap, which is rarely returned: RSS stayed at its peak after a
    non-reader left. A fixed 128 KiB threshold (glibc's initial one) hands large payloads back at once."""
    ctypes.CDLL(None).mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD


def bytes_waiting(fd: int) -> int:
    """Bytes the kernel holds unread for a socket (FIONREAD); 0 if it cannot say. Bytes waiting there when the
    handshake timer fires were sent in time: the server's loop, not the client, is behind, and the timer waits
    another period. A slow sender gains nothing by it: an idle loop reads what it sends at once."""
    buf = bytearray(4)
    try:
        fcntl.ioctl(fd, termios.FIONREAD, buf)
    except OSError:
        return 0
    return int.from_bytes(buf, "little")


class PendingHandshakes:
    """WebSocket handshakes a process has read and not yet answered, and the most it takes on at once.
    Every handshake in progress shares one loop: past a few thousand none finished in time (daphne's own
    5 s handshake timeout answered 403, or clients reset), so past the bound a handshake is refused at
    once with 503 and Retry-After, which a client can act on (CONTRACT.md, "Connection storms")."""

    def __init__(self, bound: int):
        self.bound, self.count = bound, 0

    def admit(self) -> bool:
        """Take one more handshake on, or False: the bound is reached, refuse it."""
        if self.count >= self.bound:
            return False
        self.count += 1
        return True

    def answered(self) -> None:
        self.count -= 1
