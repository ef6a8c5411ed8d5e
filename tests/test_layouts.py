"""The layout table (``trio_modbus._layouts``), the codec and the RTU framer agree.

For every function code of the table: a minimal valid request decodes, is as long as the table
says, and its RTU frame is taken whole (fed at once and byte by byte); one byte more or less is
answered with 03 ILLEGAL DATA VALUE. A response built by the PDU encoders is as long as the
table says, and on a shared RTU line it is recognised as one frame. Every quantity limit is
accepted and one more is refused with 03. The old homes of the constants still export them.
"""

from __future__ import annotations

import ast
import struct
import sys
from pathlib import Path

import pytest

import trio_modbus.framing
import trio_modbus.pdu
import trio_modbus.pdu.codec
from trio_modbus import _layouts
from trio_modbus._layouts import (
    DIAGNOSTIC_HEADER,
    EXCEPTION_RESPONSE_LENGTH,
    LAYOUTS,
    MAX_PDU_SIZE,
    MEI_HEADER,
    MEI_READ_DEVICE_ID,
    Layout,
    LayoutKind,
)
from trio_modbus.framing import Frame, RTUFramer, crc16_bytes
from trio_modbus.pdu import ExceptionCode, ExceptionResponse, MEIType, Undecodable, decode_request
from trio_modbus.pdu import responses as enc

from .framing._helpers import feed_bytewise, hexbytes

# A minimal valid request PDU of each function of the table.
REQUESTS: dict[int, bytes] = {
    0x01: hexbytes("01 0000 0001"),
    0x02: hexbytes("02 0000 0001"),
    0x03: hexbytes("03 0000 0001"),
    0x04: hexbytes("04 0000 0001"),
    0x05: hexbytes("05 0000 FF00"),
    0x06: hexbytes("06 0000 1234"),
    0x07: hexbytes("07"),
    0x08: hexbytes("08 0001 0000"),  # restart communications (sub-function 0000 echoes any data)
    0x0B: hexbytes("0B"),
    0x0C: hexbytes("0C"),
    0x0F: hexbytes("0F 0000 0001 01 01"),
    0x10: hexbytes("10 0000 0001 02 1234"),
    0x11: hexbytes("11"),
    0x14: hexbytes("14 07 06 0001 0000 0001"),
    0x15: hexbytes("15 09 06 0001 0000 0001 1234"),
    0x16: hexbytes("16 0000 FFFF 0000"),
    0x17: hexbytes("17 0000 0001 0000 0001 02 1234"),
    0x18: hexbytes("18 0000"),
    0x2B: hexbytes("2B 0E 01 00"),
}

# A response of each function, built by the PDU encoders (an echo where the answer is one).
RESPONSES: dict[int, bytes] = {
    0x01: enc.encode_read_bits(0x01, [True] * 9),
    0x02: enc.encode_read_bits(0x02, [False]),
    0x03: enc.encode_read_registers(0x03, [1, 2, 3]),
    0x04: enc.encode_read_registers(0x04, [4]),
    0x05: REQUESTS[0x05],
    0x06: REQUESTS[0x06],
    0x07: enc.encode_exception_status(0x5A),
    0x08: enc.encode_diagnostic(0x0001, b"\x00\x00"),
    0x0B: enc.encode_comm_event_counter(0, 7),
    0x0C: enc.encode_comm_event_log(0, 7, 9, b"\x20\x00"),
    0x0F: enc.encode_write_multiple(0x0F, 0, 1),
    0x10: enc.encode_write_multiple(0x10, 0, 1),
    0x11: enc.encode_report_server_id(b"\x11", True, b"ab"),
    0x14: enc.encode_read_file_record([[0x1234], [5, 6]]),
    0x15: REQUESTS[0x15],
    0x16: REQUESTS[0x16],
    0x17: enc.encode_read_registers(0x17, [7, 8]),
    0x18: enc.encode_fifo_queue([1, 2, 3]),
    0x2B: enc.encode_device_identification(1, 0x81, False, 0, [(0, b"ACME"), (1, b"X")]),
}

FUNCTIONS = sorted(LAYOUTS)


def rtu_adu(pdu: bytes, address: int = 0x11) -> bytes:
    """An RTU ADU: address, PDU, CRC."""
    head = bytes((address,)) + pdu
    return head + crc16_bytes(head)


def refusal(result: object) -> int | None:
    """The exception code the codec answers with, or None for a decoded request."""
    if isinstance(result, ExceptionResponse | Undecodable):
        return int(result.exception_code)
    return None


def table_length(layout: Layout, pdu: bytes) -> int:
    """The PDU length the table gives for a PDU that starts with ``pdu``."""
    kind, size = layout
    if kind is LayoutKind.COUNTED:
        return size + pdu[size - 1]
    if kind is LayoutKind.DEVICE_ID_OBJECTS:
        assert pdu[1] == MEI_READ_DEVICE_ID
        pos = size
        for _ in range(pdu[size - 1]):
            pos += 2 + pdu[pos + 1]
        return pos
    if kind is LayoutKind.DIAGNOSTIC and pdu[1:3] == b"\x00\x00":
        return len(pdu)  # Return Query Data: any length
    return size


def test_the_table_covers_the_standard_functions() -> None:
    assert set(REQUESTS) == set(RESPONSES) == set(LAYOUTS)
    assert MEI_READ_DEVICE_ID == MEIType.READ_DEVICE_IDENTIFICATION
    assert all(entry.max_write_quantity == 0 for fc, entry in LAYOUTS.items() if fc != 0x17)


@pytest.mark.parametrize("fc", FUNCTIONS, ids=hex)
def test_a_minimal_request_decodes_and_has_the_table_length(fc: int) -> None:
    pdu = REQUESTS[fc]
    assert pdu[0] == fc
    assert len(pdu) == table_length(LAYOUTS[fc].request, pdu)
    assert refusal(decode_request(pdu)) is None


@pytest.mark.parametrize("fc", FUNCTIONS, ids=hex)
def test_a_minimal_request_is_framed_whole_by_rtu(fc: int) -> None:
    adu = rtu_adu(REQUESTS[fc])
    assert RTUFramer().feed(adu) == [Frame(0x11, REQUESTS[fc])]
    framer = RTUFramer()
    assert feed_bytewise(framer, adu) == [Frame(0x11, REQUESTS[fc])]
    assert framer.pending == 0
    # Two in one chunk: the first one's end is found from the table, not from the chunk's end.
    assert RTUFramer().feed(adu + adu) == [Frame(0x11, REQUESTS[fc])] * 2


@pytest.mark.parametrize("fc", FUNCTIONS, ids=hex)
def test_one_byte_more_or_less_is_refused_with_03(fc: int) -> None:
    pdu = REQUESTS[fc]
    kind = LAYOUTS[fc].request.kind
    illegal_value = ExceptionCode.ILLEGAL_DATA_VALUE
    if kind is LayoutKind.COUNTED:
        # The byte count no longer counts the data that follow.
        assert refusal(decode_request(pdu + b"\x00")) == illegal_value
        assert refusal(decode_request(pdu[:-1])) == illegal_value
    else:
        assert refusal(decode_request(pdu + b"\x00")) == illegal_value
        if len(pdu) > 1:
            assert refusal(decode_request(pdu[:-1])) == illegal_value
    # Shorter than the header before the byte count, or than the shortest PDU of the kind.
    minimum = {
        LayoutKind.COUNTED: LAYOUTS[fc].request.size,
        LayoutKind.DIAGNOSTIC: DIAGNOSTIC_HEADER,
        LayoutKind.DEVICE_ID: MEI_HEADER,
    }.get(kind)
    if minimum is not None:
        assert refusal(decode_request(pdu[: minimum - 1])) == illegal_value


def test_a_diagnostic_echo_has_any_length_and_is_framed_at_the_silence() -> None:
    for data in (b"", b"\x01", b"\x01\x02\x03"):
        pdu = hexbytes("08 0000") + data
        assert refusal(decode_request(pdu)) is None
        framer = RTUFramer(silence_delimits=True)
        got = framer.feed(rtu_adu(pdu)) + framer.receive_silence()
        assert got == [Frame(0x11, pdu)]


@pytest.mark.parametrize("fc", FUNCTIONS, ids=hex)
def test_a_response_has_the_table_length_and_is_one_rtu_frame(fc: int) -> None:
    pdu = RESPONSES[fc]
    entry = LAYOUTS[fc]
    assert pdu[0] == fc
    assert len(pdu) == table_length(entry.response, pdu)
    framer = RTUFramer()
    frames = framer.feed(rtu_adu(pdu)) + framer.receive_silence()
    assert framer.counters.frames == 1
    assert framer.counters.comm_errors == framer.counters.dropped_bytes == 0
    # Another station's answer is skipped, unless it looks exactly like a request (echoes).
    assert frames == ([Frame(0x11, pdu)] if entry.response == entry.request else [])


def test_an_exception_response_has_the_table_length_and_is_one_rtu_frame() -> None:
    pdu = bytes((0x83, ExceptionCode.ILLEGAL_DATA_ADDRESS))
    assert len(pdu) == EXCEPTION_RESPONSE_LENGTH
    framer = RTUFramer()
    assert framer.feed(rtu_adu(pdu)) == []
    assert framer.counters.frames == 1
    assert framer.pending == 0


def _with_quantity(fc: int, quantity: int, write: bool = False) -> bytes:
    """A request of ``fc`` naming ``quantity`` items (for 0x17: its read or its write half)."""
    if fc in (0x01, 0x02, 0x03, 0x04):
        return struct.pack(">BHH", fc, 0, quantity)
    if fc == 0x0F:
        size = (quantity + 7) // 8
        return struct.pack(">BHHB", fc, 0, quantity, size) + bytes(size)
    if fc == 0x10:
        return struct.pack(">BHHB", fc, 0, quantity, 2 * quantity) + bytes(2 * quantity)
    assert fc == 0x17
    read, written = (1, quantity) if write else (quantity, 1)
    return struct.pack(">BHHHHB", fc, 0, read, 0, written, 2 * written) + bytes(2 * written)


QUANTITIES = [
    pytest.param(fc, entry.max_quantity, False, id=f"{fc:#04x}")
    for fc, entry in sorted(LAYOUTS.items())
    if entry.max_quantity
] + [
    pytest.param(fc, entry.max_write_quantity, True, id=f"{fc:#04x}-write")
    for fc, entry in sorted(LAYOUTS.items())
    if entry.max_write_quantity
]


@pytest.mark.parametrize(("fc", "limit", "write"), QUANTITIES)
def test_every_quantity_limit_is_the_codecs(fc: int, limit: int, write: bool) -> None:
    largest = _with_quantity(fc, limit, write)
    assert len(largest) <= MAX_PDU_SIZE
    assert refusal(decode_request(largest)) is None
    assert RTUFramer().feed(rtu_adu(largest)) == [Frame(0x11, largest)]
    assert refusal(decode_request(_with_quantity(fc, limit + 1, write))) == 3
    assert refusal(decode_request(_with_quantity(fc, 0, write))) == 3


def test_the_limits_are_the_specifications() -> None:
    # Modbus Application Protocol V1.1b3, section 6: the quantity ranges, and the PDU size.
    maxima = {fc: (entry.max_quantity, entry.max_write_quantity) for fc, entry in LAYOUTS.items()}
    assert {fc: limits for fc, limits in maxima.items() if any(limits)} == {
        0x01: (0x07D0, 0),
        0x02: (0x07D0, 0),
        0x03: (0x007D, 0),
        0x04: (0x007D, 0),
        0x0F: (0x07B0, 0),
        0x10: (0x007B, 0),
        0x17: (0x007D, 0x0079),
    }
    assert (MAX_PDU_SIZE, _layouts.ADDRESS_SPACE) == (253, 0x10000)


def test_the_old_homes_still_export_the_constants() -> None:
    codec = trio_modbus.pdu.codec
    for name in (
        "ADDRESS_SPACE",
        "MAX_FILE_RECORD_NUMBER",
        "MAX_PDU_SIZE",
        "MAX_READ_BITS",
        "MAX_READ_REGISTERS",
        "MAX_RW_WRITE_REGISTERS",
        "MAX_WRITE_COILS",
        "MAX_WRITE_REGISTERS",
    ):
        assert getattr(codec, name) == getattr(_layouts, name), name
    assert trio_modbus.pdu.MAX_PDU_SIZE == trio_modbus.framing.MAX_PDU_SIZE == MAX_PDU_SIZE
    assert trio_modbus.framing.MAX_TCP_ADU == 7 + MAX_PDU_SIZE
    assert trio_modbus.framing.MAX_RTU_ADU == MAX_PDU_SIZE + 3


def test_the_table_module_imports_only_the_standard_library() -> None:
    path = Path(_layouts.__file__)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, "a relative import"
            assert node.module is not None
            imported.add(node.module)
    bad = sorted(m for m in imported if m.split(".")[0] not in sys.stdlib_module_names)
    assert not bad, bad
    assert "__future__" in imported  # the walk sees the imports
