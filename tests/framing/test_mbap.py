"""MBAP framer: golden vectors, splitting, protocol errors, bounded buffers."""

from __future__ import annotations

import random
import struct

import pytest

from trio_modbus._errors import ModbusProtocolError
from trio_modbus.framing import MAX_FRAMED_PDU, Frame, FramingError, MBAPFramer

from ._helpers import TRAILING, feed_bytewise, hexbytes

# (wire bytes, expected frame). Messaging on TCP/IP Implementation Guide section 3.1.3 (MBAP
# header) around the Application Protocol examples: read holding registers 108..110 of
# unit 0x11 and its response (555, 0, 100), write multiple registers, an exception response.
GOLDEN = [
    pytest.param(
        "0001 0000 0006 11 03 006B 0003",
        Frame(0x11, hexbytes("03 006B 0003"), 0x0001),
        id="fc03-request",
    ),
    pytest.param(
        "0001 0000 0009 11 03 06 022B 0000 0064",
        Frame(0x11, hexbytes("03 06 022B 0000 0064"), 0x0001),
        id="fc03-response",
    ),
    pytest.param(
        "1234 0000 000B FF 10 0001 0002 04 000A 0102",
        Frame(0xFF, hexbytes("10 0001 0002 04 000A 0102"), 0x1234),
        id="fc10-request",
    ),
    pytest.param(
        "FFFF 0000 0006 00 10 0001 0002",
        Frame(0x00, hexbytes("10 0001 0002"), 0xFFFF),
        id="fc10-response",
    ),
    pytest.param("0002 0000 0003 11 83 02", Frame(0x11, b"\x83\x02", 2), id="exception"),
    pytest.param("0000 0000 0002 01 07", Frame(1, b"\x07", 0), id="shortest-length-2"),
]


@pytest.mark.parametrize(("wire_hex", "frame"), GOLDEN)
def test_golden_whole(wire_hex: str, frame: Frame) -> None:
    framer = MBAPFramer()
    assert framer.feed(hexbytes(wire_hex)) == [frame]
    assert framer.pending == 0
    assert framer.counters.frames == 1


@pytest.mark.parametrize(("wire_hex", "frame"), GOLDEN)
def test_golden_byte_at_a_time(wire_hex: str, frame: Frame) -> None:
    framer = MBAPFramer()
    assert feed_bytewise(framer, hexbytes(wire_hex)) == [frame]
    assert framer.pending == 0


@pytest.mark.parametrize(("wire_hex", "frame"), GOLDEN)
def test_golden_with_trailing_bytes(wire_hex: str, frame: Frame) -> None:
    framer = MBAPFramer()
    trailing = hexbytes("0003 0000 00")  # a partial header of the next frame
    assert framer.feed(hexbytes(wire_hex) + trailing) == [frame]
    assert framer.pending == len(trailing)
    rest = hexbytes("06 11 03 006B 0003")
    assert framer.feed(rest) == [Frame(0x11, hexbytes("03 006B 0003"), 3)]
    assert framer.pending == 0


@pytest.mark.parametrize(("wire_hex", "frame"), GOLDEN)
def test_golden_build(wire_hex: str, frame: Frame) -> None:
    framer = MBAPFramer()
    assert framer.build(frame.unit_id, frame.pdu, frame.transaction_id) == hexbytes(wire_hex)


def test_build_default_transaction_id_is_zero() -> None:
    assert MBAPFramer().build(1, b"\x07") == hexbytes("0000 0000 0002 01 07")


def test_build_largest_pdu() -> None:
    wire = MBAPFramer().build(1, bytes(253), 7)
    assert len(wire) == 260
    assert wire[:7] == hexbytes("0007 0000 00FE 01")


@pytest.mark.parametrize(
    ("unit_id", "pdu", "transaction_id"),
    [(-1, b"\x03", 0), (256, b"\x03", 0), (1, b"", 0), (1, bytes(254), 0), (1, b"\x03", 65536)],
)
def test_build_rejects_out_of_range(unit_id: int, pdu: bytes, transaction_id: int) -> None:
    with pytest.raises(ValueError):
        MBAPFramer().build(unit_id, pdu, transaction_id)


def test_many_frames_in_one_chunk_and_split_everywhere() -> None:
    frames = [Frame(u, bytes([3, u, 0, 0, 1]), 100 + u) for u in range(1, 6)]
    frames.append(Frame(9, bytes(253), 0xFFFF))
    builder = MBAPFramer()
    wire = b"".join(builder.build(f.unit_id, f.pdu, f.transaction_id) for f in frames)
    assert MBAPFramer().feed(wire) == frames
    for cut in range(len(wire) + 1):
        framer = MBAPFramer()
        assert framer.feed(wire[:cut]) + framer.feed(wire[cut:]) == frames
        assert framer.pending == 0
    framer = MBAPFramer()
    assert feed_bytewise(framer, wire[: len(wire) - 1], single=False) == frames[:-1]
    assert framer.feed(wire[-1:]) == frames[-1:]
    assert framer.counters.frames == len(frames)


def test_trailing_constant_is_a_partial_header() -> None:
    framer = MBAPFramer()
    assert framer.feed(TRAILING) == []
    assert framer.pending == 3


@pytest.mark.parametrize(
    ("wire_hex", "field"),
    [
        ("0001 0001 0006 11 03 006B 0003", "protocol id is 0x0001"),
        ("0001 FFFF 0006 11 03 006B 0003", "protocol id is 0xffff"),
        ("0001 0000 0000 11", "length field is 0"),
        ("0001 0000 0001 11", "length field is 1"),
        ("0001 0000 0106 11 03", "length field is 262"),
        ("0001 0000 FFFF 11 03", "length field is 65535"),
    ],
)
def test_bad_header_raises_naming_the_field(wire_hex: str, field: str) -> None:
    framer = MBAPFramer()
    with pytest.raises(ModbusProtocolError, match=field):
        framer.feed(hexbytes(wire_hex))
    assert framer.failed
    assert framer.pending == 0


def test_bad_protocol_id_detected_from_four_bytes() -> None:
    framer = MBAPFramer()
    assert framer.feed(hexbytes("0001 00")) == []
    with pytest.raises(FramingError, match="protocol id"):
        framer.feed(b"\x05")


def test_bad_length_detected_from_six_bytes() -> None:
    framer = MBAPFramer()
    assert framer.feed(hexbytes("0001 0000 01")) == []
    with pytest.raises(FramingError, match="length field is 262"):
        framer.feed(b"\x06")  # never waits for 262 bytes that cannot be a frame


@pytest.mark.parametrize("length", [255, 256, MAX_FRAMED_PDU + 1])
def test_length_a_little_past_254_is_delivered(length: int) -> None:
    # A request one step past a limit (0x10 with 124 registers: MBAP length 255) is a frame;
    # the codec answers it with exception 03. Only longer lengths mean "not Modbus".
    framer = MBAPFramer()
    pdu = bytes((0x10,)) + bytes(length - 2)
    wire = struct.pack(">HHHB", 9, 0, length, 1) + pdu
    assert feed_bytewise(framer, wire) == [Frame(1, pdu, 9)]
    assert framer.feed(wire + wire) == [Frame(1, pdu, 9)] * 2
    assert not framer.failed


def test_length_254_waits_for_the_whole_frame() -> None:
    framer = MBAPFramer()
    header = hexbytes("0001 0000 00FE 01")
    assert framer.feed(header + bytes(252)) == []
    assert framer.pending == 259
    assert framer.feed(b"\x00") == [Frame(1, bytes(253), 1)]


def test_frames_before_a_bad_header_are_attached_to_the_error() -> None:
    framer = MBAPFramer()
    good = hexbytes("0001 0000 0006 11 03 006B 0003")
    good2 = hexbytes("0002 0000 0006 11 03 006B 0001")
    bad = hexbytes("0003 0101 0006 11 03 006B 0003")
    with pytest.raises(FramingError) as info:
        framer.feed(good + good2 + bad)
    assert info.value.frames == [
        Frame(0x11, hexbytes("03 006B 0003"), 1),
        Frame(0x11, hexbytes("03 006B 0001"), 2),
    ]
    assert framer.counters.frames == 2
    assert framer.counters.dropped_bytes == len(bad)
    # The framer stays failed: every later feed raises again, with no frames.
    for _ in range(3):
        with pytest.raises(FramingError) as again:
            framer.feed(good)
        assert again.value.frames == []
    assert framer.counters.frames == 2
    # reset() starts over (for example for the next UDP datagram).
    framer.reset()
    assert not framer.failed
    assert framer.feed(good) == [Frame(0x11, hexbytes("03 006B 0003"), 1)]


def test_frames_of_earlier_feeds_are_not_attached() -> None:
    framer = MBAPFramer()
    good = hexbytes("0001 0000 0006 11 03 006B 0003")
    assert len(framer.feed(good + good[:5])) == 1
    with pytest.raises(FramingError) as info:
        framer.feed(good[5:] + hexbytes("0000 0002"))
    assert info.value.frames == [Frame(0x11, hexbytes("03 006B 0003"), 1)]


def test_error_is_a_modbus_protocol_error() -> None:
    assert issubclass(FramingError, ModbusProtocolError)


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_raise_or_stay_bounded(seed: int) -> None:
    rng = random.Random(seed)
    data = rng.randbytes(10_000)
    for chunking in ("whole", "random"):
        framer = MBAPFramer()
        pos = 0
        try:
            while pos < len(data):
                step = len(data) if chunking == "whole" else rng.randint(1, 50)
                framer.feed(data[pos : pos + step])
                pos += step
                assert framer.pending < 260
        except FramingError:
            assert framer.pending == 0
        else:
            raise AssertionError("10 000 random bytes were accepted as MBAP")


def test_zero_bytes_stay_bounded() -> None:
    # Zeros are a valid-looking header with length 0: rejected, never buffered without bound.
    framer = MBAPFramer()
    with pytest.raises(FramingError):
        framer.feed(bytes(10_000))
    assert framer.pending == 0


def test_feed_accepts_bytearray_and_does_not_keep_it() -> None:
    framer = MBAPFramer()
    data = bytearray(hexbytes("0001 0000 0006 11 03 006B"))
    assert framer.feed(data) == []
    data[:] = bytes(len(data))  # the caller reuses its buffer
    assert framer.feed(hexbytes("0003")) == [Frame(0x11, hexbytes("03 006B 0003"), 1)]


def test_empty_feed() -> None:
    framer = MBAPFramer()
    assert framer.feed(b"") == []
    assert framer.pending == 0
