"""TLS for the load generator's WebSocket client, sans-I/O: ssl's SSLObject over two memory buffers.

The client reads its sockets in ways a wrapped socket does not allow (the multiplexer's non-blocking
`os.readv` into one shared buffer, a slow reader's chunks): here the socket keeps carrying raw bytes and
`Tls` turns what was read into plaintext, and plaintext into what to send, wherever those bytes came from.
"""

from __future__ import annotations

import socket
import ssl


class Tls:
    """One connection's TLS session, the certificate checked against `context` for `host`."""

    closed = False  # the server sent its close_notify
    _failed: ssl.SSLError | None = None

    def __init__(self, context: ssl.SSLContext, host: str) -> None:
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._in, self._out, server_hostname=host)

    def handshake(self, sock: socket.socket) -> None:
        """Complete the TLS handshake over `sock` (blocking, as its timeout allows)."""
        while True:
            try:
                self._ssl.do_handshake()
            except ssl.SSLWantReadError:
                self._flush(sock)
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("the server closed the connection during the TLS handshake") from None
                self._in.write(data)
                continue
            self._flush(sock)
            return

    def _flush(self, sock: socket.socket) -> None:
        if self._out.pending:
            sock.sendall(self._out.read())

    def encrypt(self, plaintext: bytes) -> bytes:
        """What to send for `plaintext`."""
        self._ssl.write(plaintext)
        return self._out.read()

    def decrypt(self, data: bytes | memoryview) -> bytes:
        """The plaintext in `data` and what came before it (b"" while a record is incomplete). A TLS
        close_notify reads as the end of the stream: b"" with `closed` set. A fatal alert or a broken record
        is raised, after the plaintext that came before it in the same read (a close frame, say) is returned."""
        if self._failed is not None:
            raise self._failed
        self._in.write(data)
        chunks = []
        try:
            while chunk := self._ssl.read(262144):
                chunks.append(chunk)
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            self.closed = True
        except ssl.SSLError as failed:
            if not chunks:
                raise
            self._failed = failed  # raised at the next read, once what came before it has been read
        return b"".join(chunks)


def client_context(cafile: str) -> ssl.SSLContext:
    """A context that trusts only `cafile` (the run's own CA: bench/run/certs.py) and checks the host name."""
    return ssl.create_default_context(cafile=cafile)
