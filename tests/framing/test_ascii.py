"""ASCII framer: golden vectors, delimiter change, bad frames, overruns, bounded buffer."""

from __future__ import annotations

import random

import pytest

from trio_modbus.framing import (
    DEFAULT_ASCII_DELIMITER,
    MAX_FRAMED_ASCII,
    MAX_FRAMED_PDU,
    ASCIIFramer,
    Frame,
    lrc,
)

from ._helpers import feed_bytewise, hexbytes

# (wire characters, expected frame). LRC = two's complement of the 8-bit sum, by hand:
# 01+03+00+00+00+01 = 05 -> FB; 11+03+00+6B+00+03 = 82 -> 7E; 11+03+06+02+2B+00+00+00+64 = AB
# -> 55; 11+83+02 = 96 -> 6A; 11+10+00+01+00+02+04+00+0A+01+02 = 35 -> CB; 00+07 = 07 -> F9.
VECTORS = [
    ("notes-fc03", b":010300000001FB\r\n", Frame(1, hexbytes("03 0000 0001"))),
    ("fc03-request", b":1103006B00037E\r\n", Frame(0x11, hexbytes("03 006B 0003"))),
    (
        "fc03-response",
        b":110306022B0000006455\r\n",
        Frame(0x11, hexbytes("03 06 022B 0000 0064")),
    ),
    ("exception", b":1183026A\r\n", Frame(0x11, hexbytes("83 02"))),
    (
        "fc10-request",
        b":11100001000204000A0102CB\r\n",
        Frame(0x11, hexbytes("10 0001 0002 04 000A 0102")),
    ),
    ("broadcast-shortest", b":0007F9\r\n", Frame(0, b"\x07")),
]
GOLDEN = [pytest.param(wire, frame, id=name) for name, wire, frame in VECTORS]

TRAILING = b":0103"


@pytest.mark.parametrize(("wire", "frame"), GOLDEN)
def test_golden_whole(wire: bytes, frame: Frame) -> None:
    framer = ASCIIFramer()
    assert framer.feed(wire) == [frame]
    assert framer.pending == 0
    assert framer.counters.frames == 1
    assert framer.counters.dropped_bytes == framer.counters.comm_errors == 0


@pytest.mark.parametrize(("wire", "frame"), GOLDEN)
def test_golden_byte_at_a_time(wire: bytes, frame: Frame) -> None:
    framer = ASCIIFramer()
    assert feed_bytewise(framer, wire) == [frame]
    assert framer.pending == 0


@pytest.mark.parametrize(("wire", "frame"), GOLDEN)
def test_golden_with_trailing_bytes(wire: bytes, frame: Frame) -> None:
    framer = ASCIIFramer()
    assert framer.feed(wire + TRAILING) == [frame]
    assert framer.pending == len(TRAILING)
    assert framer.feed(b"00000001FB\r\n") == [Frame(1, hexbytes("03 0000 0001"))]
    assert framer.counters.dropped_bytes == framer.counters.comm_errors == 0


@pytest.mark.parametrize(("wire", "frame"), GOLDEN)
def test_golden_lower_case_input(wire: bytes, frame: Frame) -> None:
    framer = ASCIIFramer()
    assert framer.feed(wire.lower()) == [frame]


@pytest.mark.parametrize(("wire", "frame"), GOLDEN)
def test_golden_build(wire: bytes, frame: Frame) -> None:
    assert ASCIIFramer().build(frame.unit_id, frame.pdu) == wire
    assert ASCIIFramer().build(frame.unit_id, frame.pdu, 99) == wire  # no transaction id


def test_several_frames_in_one_chunk_and_split_everywhere() -> None:
    wire = b"".join(w for _, w, _ in VECTORS)
    frames = [f for _, _, f in VECTORS]
    assert ASCIIFramer().feed(wire) == frames
    for cut in range(len(wire) + 1):
        framer = ASCIIFramer()
        assert framer.feed(wire[:cut]) + framer.feed(wire[cut:]) == frames


def test_mixed_case_hex() -> None:
    assert (
        ASCIIFramer().feed(b":1103006b00037e\r\n:1103006B00037e\r\n")
        == [Frame(0x11, hexbytes("03 006B 0003"))] * 2
    )


def test_delimiter_change() -> None:
    framer = ASCIIFramer()
    assert framer.delimiter == DEFAULT_ASCII_DELIMITER == 0x0A
    framer.set_delimiter(ord("!"))
    assert framer.delimiter == 0x21
    assert framer.build(1, hexbytes("03 0000 0001")) == b":010300000001FB\r!"
    assert framer.feed(b":010300000001FB\r!") == [Frame(1, hexbytes("03 0000 0001"))]
    # CR LF no longer ends a frame: the frame runs on and the next ':' restarts it.
    assert framer.feed(b":010300000001FB\r\n") == []
    assert framer.feed(b":010300000001FB\r!") == [Frame(1, hexbytes("03 0000 0001"))]
    assert framer.counters.comm_errors == 1
    framer.set_delimiter(0x0A)
    assert framer.feed(b":010300000001FB\r\n") == [Frame(1, hexbytes("03 0000 0001"))]


@pytest.mark.parametrize("delimiter", [0x0D, ord("A"), 0x00, 0xFF])
def test_unusual_delimiters(delimiter: int) -> None:
    framer = ASCIIFramer()
    framer.set_delimiter(delimiter)
    wire = framer.build(1, hexbytes("03 0000 0001"))
    assert wire == b":010300000001FB\r" + bytes((delimiter,))
    assert framer.feed(wire * 2) == [Frame(1, hexbytes("03 0000 0001"))] * 2
    assert feed_bytewise(framer, wire) == [Frame(1, hexbytes("03 0000 0001"))]


@pytest.mark.parametrize("value", [-1, 256, ord(":")])
def test_set_delimiter_rejects_bad_values(value: int) -> None:
    with pytest.raises(ValueError):
        ASCIIFramer().set_delimiter(value)


def test_reset_keeps_the_delimiter() -> None:
    framer = ASCIIFramer()
    framer.set_delimiter(0x21)
    framer.feed(b":0103")
    framer.reset()
    assert framer.pending == 0
    assert framer.delimiter == 0x21
    assert framer.counters.dropped_bytes == 0


GOOD = b":1103006B00037E\r\n"
GOOD_FRAME = Frame(0x11, hexbytes("03 006B 0003"))


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(b":1103006B0003 7E\r\n", id="space"),
        pytest.param(b":1103006B0G037E\r\n", id="non-hex"),
        pytest.param(b":1103006B00037\r\n", id="odd-length"),
        pytest.param(b":1103006B00037F\r\n", id="bad-lrc"),
        pytest.param(b":01FF\r\n", id="too-short"),
        pytest.param(b":\r\n", id="empty"),
        pytest.param(b":1103006B00037E\r\r\n", id="extra-cr"),
        pytest.param(b":1103006B00037E\n\r\n", id="lf-before-cr"),
        pytest.param(b":1103006B00037E\x00\r\n", id="nul"),
    ],
)
def test_bad_frame_counts_one_error_and_is_dropped(bad: bytes) -> None:
    for way in ("whole", "bytewise"):
        framer = ASCIIFramer()
        if way == "whole":
            assert framer.feed(bad) == []
        else:
            assert feed_bytewise(framer, bad, single=False) == []
        assert framer.feed(GOOD) == [GOOD_FRAME]
        assert framer.counters.comm_errors == 1
        assert framer.counters.dropped_bytes == len(bad)
        assert framer.counters.frames == 1
        assert framer.counters.overruns == 0


def test_colon_inside_a_frame_restarts_it() -> None:
    framer = ASCIIFramer()
    assert framer.feed(b":1103006B" + GOOD) == [GOOD_FRAME]
    assert framer.counters.comm_errors == 1
    assert framer.counters.dropped_bytes == len(b":1103006B")
    framer = ASCIIFramer()
    assert feed_bytewise(framer, b"::" + GOOD, single=False) == [GOOD_FRAME]
    assert framer.counters.comm_errors == 2
    assert framer.counters.dropped_bytes == 2


def test_bytes_outside_frames_are_dropped_without_errors() -> None:
    framer = ASCIIFramer()
    noise = b"hello\r\n\x00\xff0103"
    assert framer.feed(noise + GOOD + noise + GOOD + b"\r\n") == [GOOD_FRAME, GOOD_FRAME]
    assert framer.counters.dropped_bytes == 2 * len(noise) + 2
    assert framer.counters.comm_errors == 0
    assert framer.pending == 0


def test_largest_frame_is_513_characters() -> None:
    framer = ASCIIFramer()
    wire = framer.build(1, bytes(253))
    assert len(wire) == 513
    assert framer.feed(wire) == [Frame(1, bytes(253))]
    assert feed_bytewise(framer, wire) == [Frame(1, bytes(253))]
    assert framer.counters.overruns == 0


@pytest.mark.parametrize("size", [254, 255, MAX_FRAMED_PDU])
def test_a_pdu_a_little_past_the_limit_is_delivered(size: int) -> None:
    # So that the codec answers it with 03: 0x10 with 124 registers is a 254-byte PDU.
    framer = ASCIIFramer()
    pdu = hexbytes("10 0000 007C F8") + bytes(size - 6)
    raw = b"\x01" + pdu
    line = b":" + (raw + bytes((lrc(raw),))).hex().upper().encode() + b"\r\n"
    assert len(line) <= MAX_FRAMED_ASCII
    assert framer.feed(line) == [Frame(1, pdu)]
    assert feed_bytewise(framer, line) == [Frame(1, pdu)]
    assert framer.counters.overruns == 0


def test_over_long_line_is_an_overrun() -> None:
    # 526 hex digits (263 bytes: address + 261-byte PDU + LRC) make a 529-character line: one
    # byte past the largest PDU a framer delivers.
    raw = bytes(MAX_FRAMED_PDU + 2) + b"\x00"
    line = b":" + raw.hex().encode() + b"\r\n"
    assert len(line) == MAX_FRAMED_ASCII + 2
    for way in ("whole", "bytewise", "chunks"):
        framer = ASCIIFramer()
        stream = line + GOOD
        if way == "whole":
            frames = framer.feed(stream)
        elif way == "bytewise":
            frames = feed_bytewise(framer, stream, single=False)
        else:
            frames = [
                f for i in range(0, len(stream), 100) for f in framer.feed(stream[i : i + 100])
            ]
        assert frames == [GOOD_FRAME], way
        assert framer.counters.overruns == 1, way
        assert framer.counters.comm_errors == 0, way
        assert framer.counters.dropped_bytes == len(line), way


def test_endless_line_stays_bounded() -> None:
    framer = ASCIIFramer()
    framer.feed(b":")
    for _ in range(100):
        framer.feed(b"0" * 1000)
        assert framer.pending < MAX_FRAMED_ASCII
    assert framer.counters.overruns == 1  # one over-long line; the rest waits for a ':'
    assert framer.counters.dropped_bytes == 100_001
    assert framer.feed(GOOD) == [GOOD_FRAME]


def test_silence_drops_a_partial_frame() -> None:
    framer = ASCIIFramer()
    assert framer.feed(GOOD[:7]) == []
    assert framer.receive_silence() == []
    assert framer.pending == 0
    assert framer.counters.comm_errors == 1
    assert framer.counters.dropped_bytes == 7
    assert framer.receive_silence() == []
    assert framer.counters.comm_errors == 1
    assert framer.feed(GOOD) == [GOOD_FRAME]


def test_build_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        ASCIIFramer().build(-1, b"\x03")
    with pytest.raises(ValueError):
        ASCIIFramer().build(1, bytes(254))


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_never_crash_and_stay_bounded(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = b"0123456789ABCDEFabcdef::\r\n\r\nxyz\x00\xff"
    for data in (rng.randbytes(10_000), bytes(rng.choices(alphabet, k=10_000))):
        framer = ASCIIFramer()
        framer.feed(data)
        assert framer.pending < MAX_FRAMED_ASCII
        framer = ASCIIFramer()
        pos = 0
        while pos < len(data):
            step = rng.randint(1, 40)
            framer.feed(data[pos : pos + step])
            pos += step
            assert framer.pending < MAX_FRAMED_ASCII
        c = framer.counters
        assert c.dropped_bytes + framer.pending <= len(data)
