"""What both hardened launchers do to their own process (django_chat/daphne_fixes.py, uvicorn_fixes.py):
raise the fd limit and size the connection limit from it, and have glibc return large freed blocks.
A server as it ships (CHAT_HARDENING=off) does neither."""

import ctypes
import fcntl
import math
import resource
import termios
import time

FD_RESERVE = 64  # descriptors kept for what is not a client: logs, Redis, the database, the listener
# A request's line and headers, on both hardened edges (uvicorn_fixes, django_chat/daphne_fixes): uvicorn's own h11
# default, which httptools lacks, and Twisted's total, past which it answers 400 (or, for one line, nothing)
MAX_HEAD_BYTES = 16 * 1024
RETRY_AFTER_S = 1  # the least a handshake refused past the pending bound is told to wait (HTTP's Retry-After)
MAX_RETRY_AFTER_S = 60  # and the most


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

    SMOOTHING = 0.05  # how much each answer moves the mean time a handshake takes (about the last 20)
    TARGET_S = 1.0  # a handshake taken on should be answered within about this: well inside a 5 s timeout

    def __init__(self, bound: int, clock=time.monotonic):
        self.bound, self.count, self.clock = bound, 0, clock
        self.seconds_each: float | None = None  # a handshake's mean time from admitted to answered (smoothed)
        self.told_until = 0.0  # when the last refused handshake was told to come back

    def admit(self) -> float | None:
        """Take one more handshake on: when (the clock's time, for `answered`); None: the bound is reached,
        refuse it (and tell it `retry_after`)."""
        if self.count >= self.limit():
            return None
        self.count += 1
        return self.clock()

    def limit(self) -> int:
        """How many it takes on at once now: the bound, fewer while a handshake takes longer than TARGET_S, in
        proportion. At 500, Channels in app mode (each handshake a session lookup on its one database thread)
        took more than daphne's 5 s handshake timeout over them, and 462 of a storm of 5,000 were reset."""
        if self.seconds_each is None or self.seconds_each <= self.TARGET_S:
            return self.bound
        return max(1, int(self.bound * self.TARGET_S / self.seconds_each))

    def answered(self, admitted_at: float) -> None:
        self.count -= 1
        took = self.clock() - admitted_at
        self.seconds_each = took if self.seconds_each is None else \
            self.seconds_each + (took - self.seconds_each) * self.SMOOTHING

    def retry_after(self) -> int:
        """Seconds a refused handshake is told to wait. Told 1 s each, a storm's refused members came back
        together, again and again, and refusing them took the CPU the handshakes needed: on Channels in app mode
        (a session looked up per handshake) 2,831 of 5,000 got in within 30 s, after 22,578 refusals, and 297
        waited past daphne's handshake timeout (resets). So each refusal queues behind those told before it, at
        the rate the process answers handshakes at its limit: the limit over the mean time one takes (Little's
        law; until one is answered, a second each), from RETRY_AFTER_S up to MAX_RETRY_AFTER_S."""
        now = self.clock()
        each = 1.0 if self.seconds_each is None else max(self.seconds_each, 1e-4)
        # never promised past the longest wait: the queue of promises drains as time passes, not as they are kept
        self.told_until = min(max(self.told_until, now) + each / self.limit(), now + MAX_RETRY_AFTER_S)
        return max(RETRY_AFTER_S, math.ceil(self.told_until - now))
