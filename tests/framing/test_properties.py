"""Hypothesis properties: random streams of valid frames, split anywhere, with garbage.

Each framer must never raise anything but its protocol error, must return every frame the
format allows to be recovered, and must keep its buffer bounded:

* MBAP: every frame up to the first garbage; then the connection is closed (the framer's
  output equals a one-shot reference parse of the whole stream, however it is split).
* RTU: every frame after garbage once a silence or a CRC-valid frame boundary is seen (a frame
  found only by CRC search, i.e. an unknown function, directly after garbage is the exception).
* ASCII: every intact frame (each ``:`` restarts the frame).

The example budget is the fuzz budget of tests/_fuzz.py (300 by default; 100 000 under the
"fuzz" Hypothesis profile of the nox ``fuzz`` session).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from trio_modbus.framing import (
    MAX_FRAMED_ASCII,
    MAX_FRAMED_PDU,
    MAX_FRAMED_RTU_ADU,
    ASCIIFramer,
    Frame,
    FramingError,
    MBAPFramer,
    RTUFramer,
    RtuSizeRule,
)

from .._fuzz import fuzz_settings

pytestmark = pytest.mark.fuzz
FUZZ = fuzz_settings()

# The MBAP length field the framer takes (unit id + PDU: 2..261, past the specification's 254 so
# that a request a step past a limit gets exception 03), and the most it buffers: one frame
# short of its last byte.
MAX_LENGTH = MAX_FRAMED_PDU + 1
MAX_MBAP_PENDING = 6 + MAX_LENGTH - 1

# ---------------------------------------------------------------------------------------------
# Reference checksums, written from the specification (independent of the code under test).


def _make_crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


CRC_TABLE = _make_crc_table()


def ref_crc(data: bytes) -> bytes:
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ CRC_TABLE[(crc ^ byte) & 0xFF]
    return bytes((crc & 0xFF, crc >> 8))


def ref_lrc(data: bytes) -> int:
    return (0x100 - sum(data) & 0xFF) & 0xFF


# ---------------------------------------------------------------------------------------------
# Splitting a byte stream into chunks.


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """Split ``data`` at random points (possibly one byte at a time)."""
    if len(data) <= 1:
        return [data] if data else []
    if draw(st.booleans()):
        cuts = sorted(set(draw(st.lists(st.integers(1, len(data) - 1), max_size=12))))
    else:
        cuts = list(range(1, len(data), draw(st.integers(1, 3))))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


# ---------------------------------------------------------------------------------------------
# MBAP


@st.composite
def mbap_frame(draw: st.DrawFn) -> tuple[bytes, Frame]:
    tid = draw(st.integers(0, 0xFFFF))
    unit = draw(st.integers(0, 0xFF))
    pdu = draw(st.binary(min_size=1, max_size=draw(st.sampled_from([8, 40, 253]))))
    wire = tid.to_bytes(2, "big") + b"\x00\x00" + (len(pdu) + 1).to_bytes(2, "big")
    return wire + bytes((unit,)) + pdu, Frame(unit, pdu, tid)


def mbap_reference(stream: bytes) -> tuple[list[Frame], bool]:
    """Parse a whole stream at once: (frames, whether it holds a bad header)."""
    frames: list[Frame] = []
    pos = 0
    while True:
        left = len(stream) - pos
        if left >= 4 and stream[pos + 2 : pos + 4] != b"\x00\x00":
            return frames, True
        if left >= 6 and not 2 <= int.from_bytes(stream[pos + 4 : pos + 6], "big") <= MAX_LENGTH:
            return frames, True
        if left < 7:
            return frames, False
        end = pos + 6 + int.from_bytes(stream[pos + 4 : pos + 6], "big")
        if end > len(stream):
            return frames, False
        tid = int.from_bytes(stream[pos : pos + 2], "big")
        frames.append(Frame(stream[pos + 6], stream[pos + 7 : end], tid))
        pos = end


@FUZZ
@given(st.data())
def test_mbap_stream(data: st.DataObject) -> None:
    items = data.draw(
        st.lists(
            st.one_of(mbap_frame(), st.binary(min_size=1, max_size=12).map(lambda g: (g, None))),
            max_size=8,
        )
    )
    stream = b"".join(wire for wire, _ in items)
    before_garbage: list[Frame] = []
    for _, frame in items:
        if frame is None:
            break
        before_garbage.append(frame)
    chunks = data.draw(chunked(stream))
    framer = MBAPFramer()
    got: list[Frame] = []
    raised = False
    for chunk in chunks:
        try:
            got += framer.feed(chunk)
        except FramingError as error:
            assert error.frames == [] if raised else True
            got += error.frames
            raised = True
            assert framer.pending == 0
        assert framer.pending <= MAX_MBAP_PENDING
    expected, bad = mbap_reference(stream)
    assert got == expected
    assert raised == bad
    assert got[: len(before_garbage)] == before_garbage
    assert framer.counters.frames == len(got)
    if len(before_garbage) == len(items):
        assert got == before_garbage and not raised and framer.pending == 0


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_mbap_random_chunks_raise_only_protocol_errors(chunks: list[bytes]) -> None:
    framer = MBAPFramer()
    for chunk in chunks:
        try:
            framer.feed(chunk)
        except FramingError:
            assert framer.failed
        assert framer.pending <= MAX_MBAP_PENDING


# ---------------------------------------------------------------------------------------------
# RTU

UNKNOWN_CODES = [0x00, 0x09, 0x0A, 0x0D, 0x0E, 0x12, 0x13, 0x45, 0x64, 0x6E, 0x7F]
# Custom functions the RTU property registers: 0x41 by byte count, 0x42 fixed with a response.
CUSTOM_BYTE_COUNT = 0x41
CUSTOM_FIXED = 0x42


def rtu_framer() -> RTUFramer:
    framer = RTUFramer(custom_sizes={CUSTOM_BYTE_COUNT: RtuSizeRule(byte_count_pos=2)})
    framer.register_function(CUSTOM_FIXED, frame_size=6, response=RtuSizeRule(byte_count_pos=2))
    return framer


def spec_request_length(adu: bytes) -> int | None:
    """ADU length by the request layout of the specification (None: found by CRC search)."""
    fc = adu[1]
    if fc in (0x01, 0x02, 0x03, 0x04, 0x05, 0x06):
        return 8
    if fc in (0x07, 0x0B, 0x0C, 0x11):
        return 4
    if fc == 0x08:
        return None if adu[2:4] == b"\x00\x00" else 8
    if fc in (0x0F, 0x10):
        return adu[6] + 9 if len(adu) > 6 else None
    if fc in (0x14, 0x15, CUSTOM_BYTE_COUNT):
        return adu[2] + 5
    if fc == 0x16:
        return 10
    if fc == 0x17:
        return adu[10] + 13 if len(adu) > 10 else None
    if fc == 0x18:
        return 6
    if fc == 0x2B:
        return 7 if adu[2] == 0x0E else None
    if fc == CUSTOM_FIXED:
        return 6
    return None


def _counted(draw: st.DrawFn, max_size: int = 24) -> bytes:
    body = draw(st.binary(max_size=max_size))
    return bytes((len(body),)) + body


@st.composite
def rtu_pdu(draw: st.DrawFn, *, requests_only: bool = False) -> tuple[bytes, bool, bool]:
    """(PDU, sent as a request, found by a known layout rather than by CRC search)."""
    kind = draw(st.integers(0, 14 if requests_only else 22))
    b = st.binary
    if kind <= 3:  # read requests, write single: 4 bytes
        fc = draw(st.sampled_from([1, 2, 3, 4, 5, 6]))
        return bytes((fc,)) + draw(b(min_size=4, max_size=4)), True, True
    if kind == 4:
        return bytes((draw(st.sampled_from([0x07, 0x0B, 0x0C, 0x11])),)), True, True
    if kind == 5:  # diagnostics; sub-function 0000 echoes any data
        sub = draw(st.integers(0, 3))
        if sub == 0:
            return b"\x08\x00\x00" + draw(b(max_size=12)), True, False
        return b"\x08" + sub.to_bytes(2, "big") + draw(b(min_size=2, max_size=2)), True, True
    if kind == 6:  # write multiple coils / registers
        fc = draw(st.sampled_from([0x0F, 0x10]))
        return bytes((fc,)) + draw(b(min_size=4, max_size=4)) + _counted(draw), True, True
    if kind == 7:  # file records
        return bytes((draw(st.sampled_from([0x14, 0x15])),)) + _counted(draw), True, True
    if kind == 8:
        return b"\x16" + draw(b(min_size=6, max_size=6)), True, True
    if kind == 9:
        return b"\x17" + draw(b(min_size=8, max_size=8)) + _counted(draw), True, True
    if kind == 10:
        return b"\x18" + draw(b(min_size=2, max_size=2)), True, True
    if kind == 11:  # MEI 0E: fixed; other MEI types: CRC search
        if draw(st.booleans()):
            return b"\x2b\x0e" + draw(b(min_size=2, max_size=2)), True, True
        return b"\x2b\x0d" + draw(b(max_size=10)), True, False
    if kind == 12:
        return bytes((draw(st.sampled_from(UNKNOWN_CODES)),)) + draw(b(max_size=16)), True, False
    if kind == 13:
        return bytes((CUSTOM_BYTE_COUNT,)) + _counted(draw), True, True
    if kind == 14:
        return bytes((CUSTOM_FIXED,)) + draw(b(min_size=2, max_size=2)), True, True
    # Responses of another station.
    if kind == 15:
        fc = draw(st.sampled_from([0x01, 0x02, 0x03, 0x04, 0x0C, 0x11, 0x17, CUSTOM_FIXED]))
        return bytes((fc,)) + _counted(draw), False, True
    if kind == 16:
        return b"\x07" + draw(b(min_size=1, max_size=1)), False, True
    if kind == 17:
        fc = draw(st.sampled_from([0x0B, 0x0F, 0x10]))
        return bytes((fc,)) + draw(b(min_size=4, max_size=4)), False, True
    if kind == 18:  # FIFO: two-byte byte count, FIFO count, values
        count = draw(st.integers(0, 31))
        values = draw(b(min_size=2 * count, max_size=2 * count))
        body = count.to_bytes(2, "big") + values
        return b"\x18" + len(body).to_bytes(2, "big") + body, False, True
    if kind == 19:  # read device identification
        objects = draw(st.lists(st.binary(max_size=12), max_size=4))
        body = b"".join(bytes((i, len(v))) + v for i, v in enumerate(objects))
        head = b"\x2b\x0e" + draw(b(min_size=4, max_size=4)) + bytes((len(objects),))
        return head + body, False, True
    # Exception responses.
    return bytes((draw(st.integers(0x80, 0xFF)), draw(st.integers(0, 0xFF)))), False, True


@dataclass(frozen=True)
class RtuItem:
    """One item of a generated RTU stream."""

    wire: bytes = b""
    frame: Frame | None = None  # the frame the framer returns (None: a skipped response)
    valid: bool = False  # an intact frame (False: garbage)
    known: bool = True  # found by a known layout (False: only by CRC search)
    silence: bool = False


@st.composite
def rtu_item(draw: st.DrawFn) -> RtuItem:
    choice = draw(st.integers(0, 9))
    if choice <= 5:
        unit = draw(st.integers(0, 0xFF))
        pdu, request, known = draw(rtu_pdu())
        adu = bytes((unit,)) + pdu
        wire = adu + ref_crc(adu)
        if not request and pdu[0] < 0x80 and spec_request_length(wire) == len(wire):
            request = True  # the same layout as a request: indistinguishable, returned
        return RtuItem(wire, Frame(unit, pdu) if request else None, valid=True, known=known)
    if choice <= 7:
        return RtuItem(draw(st.binary(min_size=1, max_size=10)))
    if choice == 8:  # a damaged frame: one byte changed, or cut short
        pdu, _, _ = draw(rtu_pdu())
        wire = b"\x11" + pdu
        wire += ref_crc(wire)
        index = draw(st.integers(0, len(wire) - 1))
        if draw(st.booleans()):
            wire = (
                wire[:index]
                + bytes((wire[index] ^ draw(st.integers(1, 255)),))
                + wire[index + 1 :]
            )
        else:
            wire = wire[: max(index, 1)]
        return RtuItem(wire)
    return RtuItem(silence=True)


def crc_ambiguous(stream: bytes, frames: set[tuple[int, int]]) -> bool:
    """Whether a slice of 4..256 bytes other than the intact frames ends with its own CRC.

    Such a stream is ambiguous by nature (about 1 in 2**16 per candidate): no framer can tell
    the false frame from a real one, so the property leaves those examples out.
    """
    table = CRC_TABLE
    size = len(stream)
    for start in range(size - 3):
        crc = 0xFFFF
        for index in range(start, min(size, start + 256)):
            crc = (crc >> 8) ^ table[(crc ^ stream[index]) & 0xFF]
            if not crc and index - start >= 3 and (start, index - start + 1) not in frames:
                return True
    return False


def rtu_expectations(items: Sequence[RtuItem]) -> tuple[list[Frame], int, int]:
    """(returned frames, frames counted, bytes of recovered frames) the framer must produce."""
    expected: list[Frame] = []
    counted = 0
    recovered_bytes = 0
    synced = True
    for item in items:
        if item.silence:
            synced = True
        elif not item.valid:
            synced = False
        elif synced or item.known:
            synced = True
            counted += 1
            recovered_bytes += len(item.wire)
            if item.frame is not None:
                expected.append(item.frame)
    return expected, counted, recovered_bytes


@FUZZ
@given(st.data())
def test_rtu_stream(data: st.DataObject) -> None:
    items = data.draw(st.lists(rtu_item(), max_size=8))
    stream = b""
    spans: set[tuple[int, int]] = set()
    for item in items:
        if item.valid:
            spans.add((len(stream), len(item.wire)))
        stream += item.wire
    assume(not crc_ambiguous(stream, spans))
    expected, counted, recovered_bytes = rtu_expectations(items)

    framer = rtu_framer()
    got: list[Frame] = []
    segment = b""
    for item in [*items, RtuItem(silence=True)]:
        if not item.silence:
            segment += item.wire
            continue
        for chunk in data.draw(chunked(segment)):
            got += framer.feed(chunk)
            assert framer.pending < MAX_FRAMED_RTU_ADU
        segment = b""
        got += framer.receive_silence()
        assert framer.pending == 0
    assert got == expected
    assert framer.counters.frames == counted
    assert framer.counters.dropped_bytes == len(stream) - recovered_bytes
    if framer.counters.dropped_bytes == 0:
        assert framer.counters.comm_errors == framer.counters.overruns == 0


@FUZZ
@given(st.data())
def test_rtu_requests_are_returned_without_waiting(data: st.DataObject) -> None:
    # Pipelined requests with no silence: each one comes out with its last byte.
    requests = []
    for _ in range(data.draw(st.integers(1, 6))):
        pdu, request, _ = data.draw(rtu_pdu(requests_only=True))
        assert request
        adu = bytes((data.draw(st.integers(0, 0xFF)),)) + pdu
        requests.append((adu + ref_crc(adu), Frame(adu[0], pdu)))
    stream = b"".join(wire for wire, _ in requests)
    ends, pos = [], 0
    for wire, _ in requests:
        pos += len(wire)
        ends.append(pos)
    spans = {(end - len(wire), len(wire)) for end, (wire, _) in zip(ends, requests, strict=True)}
    assume(not crc_ambiguous(stream, spans))
    framer = rtu_framer()
    got: list[Frame] = []
    delivered = 0
    for chunk in data.draw(chunked(stream)):
        got += framer.feed(chunk)
        delivered += len(chunk)
        assert got == [
            frame for end, (_, frame) in zip(ends, requests, strict=True) if end <= delivered
        ]
    assert framer.pending == 0
    assert framer.counters.comm_errors == framer.counters.dropped_bytes == 0


@FUZZ
@given(st.lists(st.one_of(st.binary(max_size=300), st.none()), max_size=20))
def test_rtu_random_chunks_never_raise(chunks: list[bytes | None]) -> None:
    framer = rtu_framer()
    total = 0
    for chunk in chunks:
        if chunk is None:
            framer.receive_silence()
            assert framer.pending == 0
        else:
            framer.feed(chunk)
            total += len(chunk)
            assert framer.pending < MAX_FRAMED_RTU_ADU
    framer.receive_silence()
    assert framer.counters.dropped_bytes <= total


# ---------------------------------------------------------------------------------------------
# ASCII

DELIMITERS = [0x0A, 0x0D, ord("!"), ord("A"), 0x00]


@st.composite
def ascii_frame(draw: st.DrawFn, delimiter: int) -> tuple[bytes, Frame]:
    unit = draw(st.integers(0, 0xFF))
    pdu = draw(st.binary(min_size=1, max_size=draw(st.sampled_from([10, 40, 253]))))
    raw = bytes((unit,)) + pdu
    text = (raw + bytes((ref_lrc(raw),))).hex()
    case = draw(st.sampled_from(["upper", "lower", "mixed"]))
    if case == "upper":
        text = text.upper()
    elif case == "mixed":
        text = "".join(c.upper() if i % 3 else c for i, c in enumerate(text))
    return b":" + text.encode() + b"\r" + bytes((delimiter,)), Frame(unit, pdu)


ASCII_GARBAGE = st.one_of(
    st.binary(min_size=1, max_size=12),
    st.text("0123456789ABCDEF:\r\n xyz", min_size=1, max_size=20).map(str.encode),
    st.integers(500, 700).map(lambda n: b":" + b"0" * n),  # an over-long line
)


@FUZZ
@given(st.data())
def test_ascii_stream(data: st.DataObject) -> None:
    delimiter = data.draw(st.sampled_from(DELIMITERS))
    items = data.draw(
        st.lists(
            st.one_of(ascii_frame(delimiter), ASCII_GARBAGE.map(lambda g: (g, None))),
            max_size=8,
        )
    )
    stream = b"".join(wire for wire, _ in items)
    intact = [frame for _, frame in items if frame is not None]
    framer = ASCIIFramer()
    framer.set_delimiter(delimiter)
    got: list[Frame] = []
    for chunk in data.draw(chunked(stream)):
        got += framer.feed(chunk)
        assert framer.pending < MAX_FRAMED_ASCII
    # Every intact frame comes out, in order (garbage may add frames of its own).
    remaining = iter(got)
    assert all(any(frame == other for other in remaining) for frame in intact)
    garbage = b"".join(wire for wire, frame in items if frame is None)
    if b":" not in garbage:
        assert got == intact
    # Every character is in a returned frame, dropped, or still buffered.
    frame_chars = sum(1 + 2 * (len(f.pdu) + 2) + 2 for f in got)
    assert frame_chars + framer.counters.dropped_bytes + framer.pending == len(stream)
    assert framer.counters.frames == len(got)


@FUZZ
@given(st.lists(st.binary(max_size=600), max_size=20))
def test_ascii_random_chunks_never_raise(chunks: list[bytes]) -> None:
    framer = ASCIIFramer()
    got: list[Frame] = []
    for chunk in chunks:
        got += framer.feed(chunk)
        assert framer.pending < MAX_FRAMED_ASCII
    frame_chars = sum(1 + 2 * (len(f.pdu) + 2) + 2 for f in got)
    assert frame_chars + framer.counters.dropped_bytes + framer.pending == sum(map(len, chunks))
