"""bench.load.deflate (a browser's permessage-deflate, client side) against the websockets library's server side."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.headers import build_extension, parse_extension
from websockets.streams import StreamReader

from bench.load.deflate import CHROMIUM_OFFER, Agreed, Deflate, NotOffered
from bench.load.framing import BINARY, TEXT, FrameError, FrameReader, encode_frame

UVICORN = {"server_max_window_bits": 12, "client_max_window_bits": 12, "compress_settings": {"memLevel": 5}}


def server_side(**factory_options):
    """What a websockets server (uvicorn's, with `factory_options`) answers to Chromium's offer: the header
    value, and the server's end of the extension."""
    [(name, params)] = parse_extension(CHROMIUM_OFFER)
    answer, extension = ServerPerMessageDeflateFactory(**factory_options).process_request_params(params, [])
    return build_extension([(name, answer)]), extension


def test_the_offer_is_chromiums_and_uvicorns_answer_is_understood():
    header, _ = server_side(**UVICORN)
    assert Agreed.parse(header) == Agreed(server_max_window_bits=12, client_max_window_bits=12)
    assert str(Agreed.parse(header)) == "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
    header, _ = server_side(server_no_context_takeover=True)
    assert Agreed.parse(header).server_no_context_takeover


@pytest.mark.parametrize("answer", [
    "x-webkit-deflate-frame", "permessage-deflate; server_max_window_bits=16", "permessage-deflate; foo",
    "permessage-deflate, permessage-deflate", "permessage-deflate; server_max_window_bits=12; server_max_window_bits=9",
    "permessage-deflate; client_no_context_takeover=1"])
def test_an_answer_the_offer_does_not_allow_is_refused(answer):
    with pytest.raises(NotOffered):
        Agreed.parse(answer)


messages = st.lists(st.one_of(st.text(max_size=300).map(str.encode), st.binary(max_size=3000)), min_size=1,
                    max_size=12)


@settings(max_examples=60, deadline=None)
@given(messages, st.booleans())
def test_what_the_server_compresses_the_reader_inflates_message_after_message(payloads, no_takeover):
    """Context takeover: each message may refer back to the ones before it, as uvicorn's do."""
    header, server = server_side(**UVICORN, server_no_context_takeover=no_takeover)
    reader = FrameReader(keep_payload=True, inflate=Deflate(Agreed.parse(header)).decompress)
    wire = b"".join(Frame(Opcode.BINARY, p).serialize(mask=False, extensions=[server]) for p in payloads)
    events = [e for cut in range(0, len(wire), 700) for e in reader.feed(wire[cut:cut + 700])]
    assert [(op, n, data) for op, n, data in events] == [(BINARY, len(p), p) for p in payloads]


@settings(max_examples=60, deadline=None)
@given(messages)
def test_what_the_client_compresses_the_server_inflates(payloads):
    header, server = server_side(**UVICORN)
    client = Deflate(Agreed.parse(header))
    for payload in payloads:
        frame = encode_frame(BINARY, client.compress(payload), compressed=True)
        wire = frame if isinstance(frame, bytes) else b"".join(frame)
        stream = StreamReader()
        stream.feed_data(wire)
        parse = Frame.parse(stream.read_exact, mask=True, extensions=[server])
        try:
            next(parse)
            raise AssertionError("the frame was incomplete")
        except StopIteration as done:
            assert done.value.data == payload


def test_a_chat_message_shrinks_and_the_reader_still_counts_its_prefix():
    """The reader keeps only a prefix of a message (keep_payload=False) but inflates the whole to count it."""
    header, server = server_side(**UVICORN)
    text = (b'{"user": "ada", "room": "general", "text": "see you at the standup in five minutes"}' * 4)
    frame = Frame(Opcode.TEXT, text).serialize(mask=False, extensions=[server])
    assert len(frame) < len(text) / 2
    [(op, n, prefix)] = FrameReader(inflate=Deflate(Agreed.parse(header)).decompress).feed(frame)
    assert (op, n) == (TEXT, len(text)) and text.startswith(prefix) and prefix


def test_a_compressed_frame_is_refused_when_nothing_was_agreed():
    _, server = server_side(**UVICORN)
    frame = Frame(Opcode.TEXT, b"hello hello hello").serialize(mask=False, extensions=[server])
    with pytest.raises(FrameError, match="reserved bits"):
        FrameReader().feed(frame)


def test_a_compressed_message_in_fragments_is_inflated_whole():
    """RSV1 on the first frame only (RFC 7692 6.1); the reader keeps every fragment and inflates the message once."""
    header, server = server_side(**UVICORN)
    parts = [b'{"text": "first part, ', b"second part, " * 20, b'last part"}']
    wire = b"".join(Frame(op, part, fin=last).serialize(mask=False, extensions=[server]) for op, part, last in
                    [(Opcode.TEXT, parts[0], False), (Opcode.CONT, parts[1], False), (Opcode.CONT, parts[2], True)])
    assert wire[0] & 0x40 and not wire[0] & 0x80, "a compressed first fragment"
    events = FrameReader(keep_payload=True, inflate=Deflate(Agreed.parse(header)).decompress).feed(wire)
    assert events == [(TEXT, len(b"".join(parts)), b"".join(parts))]
