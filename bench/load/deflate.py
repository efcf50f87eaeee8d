"""permessage-deflate (RFC 7692), the client's side, offered exactly as a browser offers it.

Chromium (and Firefox and Safari) offer it on every WebSocket with `CHROMIUM_OFFER`, take whatever the
server answers within that offer, and then compress every message they send with context takeover.
The bench's browser-like members do the same (bench/load/wsclient.py `connect(manner=Manner(browser=True))`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

CHROMIUM_OFFER = "permessage-deflate; client_max_window_bits"  # Chromium's Sec-WebSocket-Extensions, verbatim
_TAIL = b"\x00\x00\xff\xff"  # the empty stored block every sync flush ends with; RFC 7692 strips it on the wire
_WINDOW_PARAMS = ("server_max_window_bits", "client_max_window_bits")
_FLAGS = ("server_no_context_takeover", "client_no_context_takeover")


class NotOffered(ValueError):
    """The server's Sec-WebSocket-Extensions answer is not one the offer allows."""


@dataclass(frozen=True)
class Agreed:
    """The parameters the server answered with: the windows each side compresses with, and whether it starts
    each message afresh (no context takeover)."""

    server_max_window_bits: int = 15
    client_max_window_bits: int = 15
    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False

    @classmethod
    def parse(cls, answer: str) -> Agreed:
        """The server's Sec-WebSocket-Extensions value, checked against CHROMIUM_OFFER."""
        name, *params = [part.strip() for part in answer.split(";")]
        if name != "permessage-deflate" or "," in answer:
            raise NotOffered(f"the server answered {answer!r}; only one permessage-deflate was offered")
        agreed: dict[str, int | bool] = {}
        for param in params:
            key, sep, value = (s.strip() for s in param.partition("="))
            if key in agreed:
                raise NotOffered(f"{key} twice in {answer!r}")
            if key in _FLAGS and not sep:
                agreed[key] = True
            elif key in _WINDOW_PARAMS and value.isdigit() and 8 <= int(value) <= 15:
                agreed[key] = int(value)  # client_max_window_bits: the offer named it without a value, so any
            else:
                raise NotOffered(f"parameter {param!r} in {answer!r} was not offered or is out of range")
        return cls(**agreed)  # type: ignore[arg-type]  # the keys are the fields, checked above

    def __str__(self) -> str:
        return "; ".join(["permessage-deflate", *(f"{k}={getattr(self, k)}" for k in _WINDOW_PARAMS),
                          *(k for k in _FLAGS if getattr(self, k))])


class Deflate:
    """One connection's compressor and decompressor (sans-I/O: bytes in, bytes out)."""

    def __init__(self, agreed: Agreed) -> None:
        self.agreed = agreed
        self._compressor = self._new_compressor()
        self._decompressor = zlib.decompressobj(-15)  # a window as large as any the server may use

    def _new_compressor(self):
        # zlib's raw deflate takes no window under 9 (it would write 9's and announce 8); Chromium does the same
        return zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED,
                                -max(9, self.agreed.client_max_window_bits), 8)

    def compress(self, payload: bytes) -> bytes:
        if self.agreed.client_no_context_takeover:
            self._compressor = self._new_compressor()
        data = self._compressor.compress(payload) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        return data[:-4] if data.endswith(_TAIL) else data

    def decompress(self, payload: bytes) -> bytes:
        """A whole message's payload, as the server compressed it (its frames' payloads joined)."""
        try:
            return self._decompressor.decompress(payload + _TAIL)
        except zlib.error as e:
            raise ValueError(f"a compressed message does not inflate: {e}") from None
