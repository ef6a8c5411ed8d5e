"""Request decoding and validation against the Modbus Application Protocol V1.1b3.

Every expected byte string below was written by hand from the specification (section 6 for
the request layouts and examples, section 7 for exception codes), never copied from the
code's output. An exception reply is ``function code | 0x80`` followed by the exception code:
01 ILLEGAL FUNCTION, 02 ILLEGAL DATA ADDRESS, 03 ILLEGAL DATA VALUE.

Quantity and byte-count checks belong to the codec (03); address ranges against the datastore
(02) and execution (04) are tested in tests/service.
"""

from __future__ import annotations

import pytest

from trio_modbus.pdu import (
    DiagnosticRequest,
    ExceptionCode,
    ExceptionResponse,
    FileRecord,
    GetCommEventCounterRequest,
    GetCommEventLogRequest,
    MaskWriteRegisterRequest,
    ModbusPDU,
    ReadBitsRequest,
    ReadDeviceIdentificationRequest,
    ReadExceptionStatusRequest,
    ReadFifoQueueRequest,
    ReadFileRecordRequest,
    ReadRegistersRequest,
    ReadWriteMultipleRegistersRequest,
    ReportServerIdRequest,
    Undecodable,
    WriteFileRecordRequest,
    WriteMultipleCoilsRequest,
    WriteMultipleRegistersRequest,
    WriteSingleCoilRequest,
    WriteSingleRegisterRequest,
    decode_request,
)
from trio_modbus.pdu.codec import MAX_PDU_SIZE


def h(text: str) -> bytes:
    """Bytes from spaced hex, the way the specification prints frames."""
    return bytes.fromhex(text)


def reply(pdu: bytes) -> bytes:
    """Decode a request that must be refused and return the exception reply's bytes."""
    result = decode_request(pdu)
    assert isinstance(result, Undecodable), result
    assert result.pdu == pdu
    return result.response().encode()


# -- every function code: a valid request, truncated, over-long -------------------------------

# (valid request PDU, the decoded value) — the requests are the spec's section 6 examples where
# the spec gives one.
VALID = [
    pytest.param(h("01 00 13 00 13"), ReadBitsRequest(0x01, 19, 19), id="01"),
    pytest.param(h("02 00 C4 00 16"), ReadBitsRequest(0x02, 196, 22), id="02"),
    pytest.param(h("03 00 6B 00 03"), ReadRegistersRequest(0x03, 107, 3), id="03"),
    pytest.param(h("04 00 08 00 01"), ReadRegistersRequest(0x04, 8, 1), id="04"),
    pytest.param(h("05 00 AC FF 00"), WriteSingleCoilRequest(172, True), id="05"),
    pytest.param(h("06 00 01 00 03"), WriteSingleRegisterRequest(1, 3), id="06"),
    pytest.param(h("07"), ReadExceptionStatusRequest(), id="07"),
    pytest.param(h("08 00 0A 00 00"), DiagnosticRequest(0x0A, h("00 00")), id="08"),
    pytest.param(h("0B"), GetCommEventCounterRequest(), id="0B"),
    pytest.param(h("0C"), GetCommEventLogRequest(), id="0C"),
    pytest.param(
        h("0F 00 13 00 0A 02 CD 01"),
        # CD = 1100 1101: coils 20..27 = 1 0 1 1 0 0 1 1 (bit 0 first); 01: coils 28, 29 = 1 0.
        WriteMultipleCoilsRequest(
            19, (True, False, True, True, False, False, True, True, True, False)
        ),
        id="0F",
    ),
    pytest.param(
        h("10 00 01 00 02 04 00 0A 01 02"),
        WriteMultipleRegistersRequest(1, (0x000A, 0x0102)),
        id="10",
    ),
    pytest.param(h("11"), ReportServerIdRequest(), id="11"),
    pytest.param(
        h("14 0E 06 00 04 00 01 00 02 06 00 03 00 09 00 02"),
        ReadFileRecordRequest((FileRecord(4, 1, 2), FileRecord(3, 9, 2))),
        id="14",
    ),
    pytest.param(
        h("15 0D 06 00 04 00 07 00 03 06 AF 04 BE 10 0D"),
        WriteFileRecordRequest((FileRecord(4, 7, 3, (0x06AF, 0x04BE, 0x100D)),)),
        id="15",
    ),
    pytest.param(h("16 00 04 00 F2 00 25"), MaskWriteRegisterRequest(4, 0x00F2, 0x0025), id="16"),
    pytest.param(
        h("17 00 03 00 06 00 0E 00 03 06 00 FF 00 FF 00 FF"),
        ReadWriteMultipleRegistersRequest(3, 6, 14, (0x00FF, 0x00FF, 0x00FF)),
        id="17",
    ),
    pytest.param(h("18 04 DE"), ReadFifoQueueRequest(0x04DE), id="18"),
    pytest.param(h("2B 0E 01 00"), ReadDeviceIdentificationRequest(1, 0), id="2B"),
]


@pytest.mark.parametrize(("pdu", "expected"), VALID)
def test_valid_request_decodes(pdu: bytes, expected: object) -> None:
    assert decode_request(pdu) == expected


@pytest.mark.parametrize(("pdu", "expected"), VALID)
def test_valid_request_encodes_back_to_the_same_bytes(pdu: bytes, expected: object) -> None:
    assert expected.encode() == pdu  # type: ignore[attr-defined]


# 07, 0B, 0C and 11 are a function code alone: nothing to truncate.
WITH_DATA = [p for p in VALID if len(p.values[0]) > 1]  # type: ignore[arg-type]


@pytest.mark.parametrize(("pdu", "expected"), WITH_DATA)
def test_truncated_pdu_is_illegal_data_value(pdu: bytes, expected: object) -> None:
    exception = bytes((pdu[0] | 0x80, 0x03))
    assert reply(pdu[:-1]) == exception
    # ... and every shorter prefix that still has the function code, too.
    for end in range(1, len(pdu) - 1):
        assert reply(pdu[:end]) == exception, pdu[:end].hex(" ")


@pytest.mark.parametrize(("pdu", "expected"), VALID)
def test_over_long_pdu_is_illegal_data_value(pdu: bytes, expected: object) -> None:
    exception = bytes((pdu[0] | 0x80, 0x03))
    assert reply(pdu + b"\x00") == exception
    assert reply(pdu + h("00 00")) == exception


def test_pdu_longer_than_253_bytes_is_illegal_data_value() -> None:
    # 08/00 "return query data" echoes any data: the only limit is the 253-byte PDU.
    assert decode_request(h("08 00 00") + bytes(250)) == DiagnosticRequest(0, bytes(250))
    assert len(h("08 00 00") + bytes(250)) == MAX_PDU_SIZE == 253
    assert reply(h("08 00 00") + bytes(251)) == h("88 03")


def test_empty_pdu_is_refused_without_crashing() -> None:
    result = decode_request(b"")
    assert result == Undecodable(0, ExceptionCode.ILLEGAL_FUNCTION, b"")
    assert result.response() == ExceptionResponse(0, ExceptionCode.ILLEGAL_FUNCTION)


# -- unsupported function codes: 01 ------------------------------------------------------------

UNSUPPORTED = [
    0x00,
    0x09,
    0x0A,
    0x0D,
    0x0E,
    0x12,
    0x13,
    0x19,
    0x2A,
    0x2C,
    0x41,  # user-defined range 65..72, nothing registered
    0x48,
    0x64,  # user-defined range 100..110
    0x6E,
    0x7F,
]


@pytest.mark.parametrize("fc", UNSUPPORTED, ids=lambda fc: f"{fc:02X}")
def test_unsupported_function_code_is_illegal_function(fc: int) -> None:
    expected = bytes((fc | 0x80, 0x01))
    assert reply(bytes((fc,))) == expected
    assert reply(bytes((fc,)) + h("00 00 00 01")) == expected
    # 01 comes before any structural check, even for a PDU over 253 bytes.
    assert reply(bytes((fc,)) + bytes(300)) == expected


# -- 01 / 02 read coils / discrete inputs: quantity 1..2000 ----------------------------------


@pytest.mark.parametrize("fc", [0x01, 0x02])
@pytest.mark.parametrize(
    ("quantity", "ok"),
    [
        ("00 00", False),
        ("00 01", True),
        ("07 D0", True),  # 2000
        ("07 D1", False),  # 2001
        ("FF FF", False),
    ],
)
def test_read_bits_quantity_limits(fc: int, quantity: str, ok: bool) -> None:
    pdu = bytes((fc,)) + h("00 00") + h(quantity)
    if ok:
        assert decode_request(pdu) == ReadBitsRequest(fc, 0, int.from_bytes(h(quantity)))
    else:
        assert reply(pdu) == bytes((fc | 0x80, 0x03))


@pytest.mark.parametrize(
    ("pdu", "ok"),
    [
        ("01 FF FF 00 01", True),  # the last address
        ("01 FF FF 00 02", False),  # one past the 16-bit address space
        ("02 F8 30 07 D0", True),  # 0xF830 + 2000 = 0x10000 exactly
        ("02 F8 31 07 D0", False),
        ("03 FF 83 00 7D", True),
        ("04 FF 84 00 7D", False),
        ("0F FF FF 00 02 01 03", False),
        ("0F FF FE 00 02 01 03", True),
        ("10 FF FF 00 02 04 00 01 00 02", False),
        ("10 FF FF 00 01 02 00 01", True),
        ("17 FF FF 00 02 00 00 00 01 02 00 01", False),  # the read range overflows
        ("17 00 00 00 01 FF FF 00 02 04 00 01 00 02", False),  # the write range overflows
        ("17 FF FF 00 01 FF FF 00 01 02 00 01", True),
    ],
)
def test_a_range_past_address_0xFFFF_is_exception_02(pdu: str, ok: bool) -> None:
    """Data addresses are 16-bit (MB 4.3): a range running past 0xFFFF is an address error.

    It is checked after the structure (03 comes first), so it holds whatever the datastore
    is (a mutable sparse block would otherwise create addresses 0x10000 and up).
    """
    result = decode_request(h(pdu))
    if ok:
        assert not isinstance(result, Undecodable)
    else:
        assert result == Undecodable(h(pdu)[0], ExceptionCode.ILLEGAL_DATA_ADDRESS, h(pdu))


# -- 03 / 04 read registers: quantity 1..125 --------------------------------------------------


@pytest.mark.parametrize("fc", [0x03, 0x04])
@pytest.mark.parametrize(
    ("quantity", "ok"),
    [("00 00", False), ("00 01", True), ("00 7D", True), ("00 7E", False), ("FF FF", False)],
)
def test_read_registers_quantity_limits(fc: int, quantity: str, ok: bool) -> None:
    pdu = bytes((fc,)) + h("00 00") + h(quantity)
    if ok:
        assert decode_request(pdu) == ReadRegistersRequest(fc, 0, int.from_bytes(h(quantity)))
    else:
        assert reply(pdu) == bytes((fc | 0x80, 0x03))


# -- 05 write single coil: 0x0000 or 0xFF00 only -----------------------------------------------


def test_write_single_coil_off() -> None:
    assert decode_request(h("05 00 AC 00 00")) == WriteSingleCoilRequest(172, False)


@pytest.mark.parametrize("value", ["FF 01", "00 01", "00 FF", "FF FF", "7F 00", "01 00"])
def test_write_single_coil_other_values_are_illegal_data_value(value: str) -> None:
    assert reply(h("05 00 AC") + h(value)) == h("85 03")


# -- 06 write single register: any value -------------------------------------------------------


@pytest.mark.parametrize("value", [0x0000, 0xFFFF])
def test_write_single_register_takes_any_value(value: int) -> None:
    pdu = h("06 FF FF") + value.to_bytes(2, "big")
    assert decode_request(pdu) == WriteSingleRegisterRequest(0xFFFF, value)


# -- 07, 0B, 0C, 11: no data -------------------------------------------------------------------


@pytest.mark.parametrize("fc", [0x07, 0x0B, 0x0C, 0x11])
def test_no_data_functions_refuse_any_data(fc: int) -> None:
    assert reply(bytes((fc, 0x00))) == bytes((fc | 0x80, 0x03))


# -- 08 diagnostics ------------------------------------------------------------------------------

SUPPORTED_SUBFUNCTIONS = [0x00, 0x01, 0x02, 0x03, 0x04, *range(0x0A, 0x13), 0x14]
# Sub-functions whose request data field is 00 00 in the spec's tables.
ZERO_DATA_SUBFUNCTIONS = [0x02, 0x04, *range(0x0A, 0x13), 0x14]


def test_diagnostics_return_query_data_spec_example() -> None:
    assert decode_request(h("08 00 00 A5 37")) == DiagnosticRequest(0x00, h("A5 37"))


@pytest.mark.parametrize("data", ["", "01", "01 02 03"])
def test_diagnostics_return_query_data_echoes_any_data(data: str) -> None:
    # The spec's table says "Any" for the request data of 00; we accept any length (even odd),
    # since the reply is a byte-for-byte echo.
    assert decode_request(h("08 00 00") + h(data)) == DiagnosticRequest(0, h(data))


@pytest.mark.parametrize(
    "sub",
    [0x05, 0x06, 0x07, 0x08, 0x09, 0x13, 0x15, 0x16, 0x20, 0x0100, 0xFFFF],
    ids=lambda s: f"{s:04X}",
)
def test_diagnostics_reserved_subfunction_is_illegal_function(sub: int) -> None:
    assert reply(h("08") + sub.to_bytes(2, "big") + h("00 00")) == h("88 01")
    # 01 (function/sub-function) is checked before the data field (03).
    assert reply(h("08") + sub.to_bytes(2, "big") + h("12 34 56")) == h("88 01")


@pytest.mark.parametrize("sub", ZERO_DATA_SUBFUNCTIONS, ids=lambda s: f"{s:02X}")
def test_diagnostics_zero_data_subfunctions(sub: int) -> None:
    head = h("08 00") + bytes((sub,))
    assert decode_request(head + h("00 00")) == DiagnosticRequest(sub, h("00 00"))
    for bad in ["00 01", "FF 00", "", "00", "00 00 00"]:
        assert reply(head + h(bad)) == h("88 03"), bad


@pytest.mark.parametrize("data", ["00 00", "FF 00"])
def test_diagnostics_restart_communications_accepts_0000_and_ff00(data: str) -> None:
    assert decode_request(h("08 00 01") + h(data)) == DiagnosticRequest(1, h(data))


@pytest.mark.parametrize("data", ["00 01", "FF FF", "00 FF", "", "FF 00 00"])
def test_diagnostics_restart_communications_other_data_is_illegal_data_value(data: str) -> None:
    assert reply(h("08 00 01") + h(data)) == h("88 03")


def test_diagnostics_change_ascii_delimiter_takes_char_then_00() -> None:
    # Spec example: change the delimiter to LF (0A): data field "CHAR 00".
    assert decode_request(h("08 00 03 0A 00")) == DiagnosticRequest(3, h("0A 00"))
    assert reply(h("08 00 03 0A 01")) == h("88 03")
    assert reply(h("08 00 03 0A")) == h("88 03")


def test_diagnostics_too_short_for_a_subfunction_is_illegal_data_value() -> None:
    assert reply(h("08")) == h("88 03")
    assert reply(h("08 00")) == h("88 03")


# -- 0F write multiple coils: quantity 1..1968, byte count = ceil(N / 8) -------------------------


def write_coils(quantity: int, byte_count: int | None = None, data: bytes | None = None) -> bytes:
    n = (quantity + 7) // 8
    byte_count = n if byte_count is None else byte_count
    data = bytes(byte_count) if data is None else data
    return h("0F 00 00") + quantity.to_bytes(2, "big") + bytes((byte_count,)) + data


@pytest.mark.parametrize(("quantity", "ok"), [(0, False), (1, True), (1968, True), (1969, False)])
def test_write_multiple_coils_quantity_limits(quantity: int, ok: bool) -> None:
    pdu = write_coils(quantity)
    if ok:
        assert decode_request(pdu) == WriteMultipleCoilsRequest(0, (False,) * quantity)
    else:
        assert reply(pdu) == h("8F 03")


def test_write_multiple_coils_1968_is_a_252_byte_pdu() -> None:
    # 1968 coils = 246 bytes of data: 6 + 246 = 252 bytes, the largest 0F request.
    assert len(write_coils(1968)) == 252
    assert write_coils(1968)[5] == 0xF6


@pytest.mark.parametrize(
    ("pdu", "why"),
    [
        (h("0F 00 13 00 0A 03 CD 01 00"), "byte count 3 for 10 coils"),
        (h("0F 00 13 00 0A 01 CD"), "byte count 1 for 10 coils, consistent with the length"),
        (h("0F 00 13 00 08 02 CD 01"), "byte count 2 for 8 coils"),
        (h("0F 00 13 00 09 01 CD"), "byte count 1 for 9 coils"),
        (h("0F 00 13 00 0A 02 CD"), "byte count says 2, 1 byte follows"),
        (h("0F 00 13 00 0A 02 CD 01 FF"), "byte count says 2, 3 bytes follow"),
        (h("0F 00 13 00 0A 00"), "byte count 0"),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_write_multiple_coils_lying_byte_count_is_illegal_data_value(pdu: bytes, why: str) -> None:
    assert reply(pdu) == h("8F 03"), why


def test_write_multiple_coils_byte_count_boundaries() -> None:
    assert decode_request(h("0F 00 00 00 08 01 FF")) == WriteMultipleCoilsRequest(0, (True,) * 8)
    assert decode_request(h("0F 00 00 00 09 02 FF 01")) == WriteMultipleCoilsRequest(
        0, (True,) * 9
    )


# -- 10 write multiple registers: quantity 1..123, byte count = 2N --------------------------------


def write_registers(quantity: int, byte_count: int | None = None) -> bytes:
    byte_count = 2 * quantity if byte_count is None else byte_count
    return (
        h("10 00 00")
        + quantity.to_bytes(2, "big")
        + bytes((byte_count & 0xFF,))
        + bytes(2 * quantity)
    )


@pytest.mark.parametrize(("quantity", "ok"), [(0, False), (1, True), (123, True), (124, False)])
def test_write_multiple_registers_quantity_limits(quantity: int, ok: bool) -> None:
    pdu = write_registers(quantity)
    if ok:
        assert decode_request(pdu) == WriteMultipleRegistersRequest(0, (0,) * quantity)
    else:
        assert reply(pdu) == h("90 03")


@pytest.mark.parametrize(
    "pdu",
    [
        h("10 00 01 00 02 03 00 0A 01 02"),  # byte count 3, not 4
        h("10 00 01 00 02 05 00 0A 01 02"),  # byte count 5, not 4
        h("10 00 01 00 02 02 00 0A"),  # byte count 2 and 2 bytes: consistent, but not 2N
        h("10 00 01 00 02 04 00 0A 01"),  # says 4, 3 follow
        h("10 00 01 00 02 04 00 0A 01 02 03"),  # says 4, 5 follow
    ],
)
def test_write_multiple_registers_lying_byte_count_is_illegal_data_value(pdu: bytes) -> None:
    assert reply(pdu) == h("90 03")


# -- 14 read file record -----------------------------------------------------------------------


def read_file(*subs: str) -> bytes:
    body = b"".join(h(s) for s in subs)
    return h("14") + bytes((len(body),)) + body


def test_read_file_record_byte_count_limits() -> None:
    # 0x07 (one sub-request) is the minimum ...
    assert decode_request(read_file("06 00 01 00 00 00 01")) == ReadFileRecordRequest(
        (FileRecord(1, 0, 1),)
    )
    # ... 0xF5 (35 sub-requests) the maximum.
    pdu = read_file(*["06 00 01 00 00 00 01"] * 35)
    assert pdu[1] == 0xF5
    assert decode_request(pdu) == ReadFileRecordRequest((FileRecord(1, 0, 1),) * 35)
    # 0x06 and 0xF6 are outside, whatever follows.
    assert reply(h("14 06 06 00 01 00 00 00")) == h("94 03")
    assert reply(h("14 F6") + h("06 00 01 00 00 00 01") * 35 + h("06")) == h("94 03")
    assert reply(h("14 00")) == h("94 03")


@pytest.mark.parametrize(
    "pdu",
    [
        h("14 08 06 00 01 00 00 00 01 06"),  # 8 bytes: not whole sub-requests
        h("14 0E 06 00 04 00 01 00 02 06 00 03 00 09 00"),  # byte count says 14, 13 follow
        h("14 07 06 00 04 00 01 00 02 06"),  # byte count says 7, 8 follow
        h("14"),
    ],
)
def test_read_file_record_structure_errors(pdu: bytes) -> None:
    assert reply(pdu) == h("94 03")


def test_read_file_record_reply_must_fit_253_bytes() -> None:
    # Reply: 14, resp data length, then per sub-request: length, 06, 2 bytes a record.
    # One sub-request of 124 records: 2 + 2 + 248 = 252 bytes; 125 records: 254 bytes.
    assert decode_request(read_file("06 00 01 00 00 00 7C")) == ReadFileRecordRequest(
        (FileRecord(1, 0, 124),)
    )
    assert reply(read_file("06 00 01 00 00 00 7D")) == h("94 03")
    # Two sub-requests: 2 + (2 + 2a) + (2 + 2b) <= 253  <=>  a + b <= 123.
    assert isinstance(
        decode_request(read_file("06 00 01 00 00 00 3D", "06 00 02 00 00 00 3E")),
        ReadFileRecordRequest,
    )
    assert reply(read_file("06 00 01 00 00 00 3E", "06 00 02 00 00 00 3E")) == h("94 03")


def test_read_file_record_zero_length_sub_request_is_illegal_data_value() -> None:
    # Ambiguous in the spec (the diagram lists only "Starting Address + Length OK" under 02):
    # a record length of 0 asks for nothing, which we treat as a bad quantity (03), like a
    # quantity of 0 in every other function.
    assert reply(read_file("06 00 01 00 00 00 00")) == h("94 03")


@pytest.mark.parametrize(
    ("sub", "ok"),
    [
        ("06 00 01 00 00 00 01", True),
        ("05 00 01 00 00 00 01", False),  # reference type must be 6
        ("07 00 01 00 00 00 01", False),
        ("00 00 01 00 00 00 01", False),
        ("06 00 00 00 00 00 01", False),  # file 0 does not exist (1..0xFFFF)
        ("06 FF FF 00 00 00 01", True),  # file 0xFFFF
        ("06 00 01 27 0F 00 01", True),  # record 9999
        ("06 00 01 27 10 00 01", False),  # record 10000
        ("06 00 01 27 0E 00 02", True),  # records 9998..9999
        ("06 00 01 27 0F 00 02", False),  # records 9999..10000
        ("06 00 01 FF FF 00 01", False),
    ],
)
def test_read_file_record_references(sub: str, ok: bool) -> None:
    # Per the spec's state diagram for 0x14, reference type, file number, record number and
    # record number + length are the ILLEGAL DATA ADDRESS (02) checks.
    pdu = read_file(sub)
    if ok:
        assert isinstance(decode_request(pdu), ReadFileRecordRequest)
    else:
        assert reply(pdu) == h("94 02")
        # with a valid sub-request before it, too
        assert reply(read_file("06 00 01 00 00 00 01", sub)) == h("94 02")


def test_read_file_record_structure_is_checked_before_references() -> None:
    # 03 (reply too long) wins over 02 (bad reference type).
    assert reply(read_file("05 00 01 00 00 00 7D")) == h("94 03")


# -- 15 write file record ------------------------------------------------------------------------


def write_file(*subs: str) -> bytes:
    body = b"".join(h(s) for s in subs)
    return h("15") + bytes((len(body) & 0xFF,)) + body


def test_write_file_record_request_data_length_limits() -> None:
    # 0x09 (one sub-request, one record) is the minimum.
    assert decode_request(write_file("06 00 01 00 00 00 01 12 34")) == WriteFileRecordRequest(
        (FileRecord(1, 0, 1, (0x1234,)),)
    )
    # 0xFB is the maximum: 7 + 2 x 122 = 251 bytes, a 253-byte PDU.
    big = "06 00 01 00 00 00 7A " + "AB CD " * 122
    assert write_file(big)[1] == 0xFB
    assert decode_request(write_file(big)) == WriteFileRecordRequest(
        (FileRecord(1, 0, 122, (0xABCD,) * 122),)
    )
    # 0xFD: 7 + 2 x 123 = 253 bytes of data, a 255-byte PDU.
    assert reply(write_file("06 00 01 00 00 00 7B " + "AB CD " * 123)) == h("95 03")
    # 0x07 with a sub-request of no records; 0x08 with an odd byte.
    assert reply(write_file("06 00 01 00 00 00 00")) == h("95 03")
    assert reply(write_file("06 00 01 00 00 00 00 12")) == h("95 03")
    assert reply(h("15 00")) == h("95 03")


@pytest.mark.parametrize(
    "pdu",
    [
        write_file("06 00 04 00 07 00 03 06 AF 04 BE"),  # record length 3, two records follow
        write_file("06 00 04 00 07 00 01 06 AF 04 BE"),  # record length 1, two follow
        write_file("06 00 04 00 07 00 00 06 AF"),  # record length 0
        write_file("06 00 01 00 00 00 01 12 34 06"),  # a stray byte after a sub-request
        h("15 0D 06 00 04 00 07 00 03 06 AF 04 BE 10"),  # length says 13, 12 follow
        h("15 0C 06 00 04 00 07 00 03 06 AF 04 BE 10 0D"),  # length says 12, 13 follow
    ],
)
def test_write_file_record_structure_errors(pdu: bytes) -> None:
    assert reply(pdu) == h("95 03")


@pytest.mark.parametrize(
    ("sub", "ok"),
    [
        ("06 00 01 00 00 00 01 12 34", True),
        ("05 00 01 00 00 00 01 12 34", False),
        ("06 00 00 00 00 00 01 12 34", False),
        ("06 FF FF 27 0F 00 01 12 34", True),
        ("06 00 01 27 10 00 01 12 34", False),
        ("06 00 01 27 0F 00 02 12 34 56 78", False),
    ],
)
def test_write_file_record_references(sub: str, ok: bool) -> None:
    pdu = write_file(sub)
    if ok:
        assert isinstance(decode_request(pdu), WriteFileRecordRequest)
    else:
        assert reply(pdu) == h("95 02")


def test_write_file_record_several_sub_requests() -> None:
    pdu = write_file("06 00 01 00 02 00 01 00 11", "06 00 02 00 03 00 02 00 22 00 33")
    assert decode_request(pdu) == WriteFileRecordRequest(
        (FileRecord(1, 2, 1, (0x11,)), FileRecord(2, 3, 2, (0x22, 0x33)))
    )


# -- 16 mask write register --------------------------------------------------------------------


def test_mask_write_register_takes_any_masks() -> None:
    assert decode_request(h("16 FF FF FF FF 00 00")) == MaskWriteRegisterRequest(
        0xFFFF, 0xFFFF, 0x0000
    )


# -- 17 read/write multiple registers: read 1..125, write 1..121, byte count 2 x write ---------


def read_write(read_qty: int, write_qty: int, byte_count: int | None = None) -> bytes:
    byte_count = 2 * write_qty if byte_count is None else byte_count
    return (
        h("17 00 00")
        + read_qty.to_bytes(2, "big")
        + h("00 00")
        + write_qty.to_bytes(2, "big")
        + bytes((byte_count & 0xFF,))
        + bytes(2 * write_qty)
    )


@pytest.mark.parametrize(("read_qty", "ok"), [(0, False), (1, True), (125, True), (126, False)])
def test_read_write_read_quantity_limits(read_qty: int, ok: bool) -> None:
    pdu = read_write(read_qty, 1)
    if ok:
        assert decode_request(pdu) == ReadWriteMultipleRegistersRequest(0, read_qty, 0, (0,))
    else:
        assert reply(pdu) == h("97 03")


@pytest.mark.parametrize(("write_qty", "ok"), [(0, False), (1, True), (121, True), (122, False)])
def test_read_write_write_quantity_limits(write_qty: int, ok: bool) -> None:
    pdu = read_write(1, write_qty)
    if ok:
        assert len(pdu) <= 252
        assert decode_request(pdu) == ReadWriteMultipleRegistersRequest(0, 1, 0, (0,) * write_qty)
    else:
        assert reply(pdu) == h("97 03")


@pytest.mark.parametrize(
    "pdu",
    [
        h("17 00 03 00 06 00 0E 00 03 05 00 FF 00 FF 00 FF"),  # byte count 5 for 3 registers
        h("17 00 03 00 06 00 0E 00 03 04 00 FF 00 FF"),  # byte count 4, consistent length
        h("17 00 03 00 06 00 0E 00 03 06 00 FF 00 FF 00"),  # says 6, 5 follow
        h("17 00 03 00 06 00 0E 00 03 06 00 FF 00 FF 00 FF 00"),  # says 6, 7 follow
    ],
)
def test_read_write_lying_byte_count_is_illegal_data_value(pdu: bytes) -> None:
    assert reply(pdu) == h("97 03")


# -- 18 read FIFO queue ------------------------------------------------------------------------


@pytest.mark.parametrize("pointer", [0x0000, 0xFFFF])
def test_read_fifo_queue_any_pointer_address(pointer: int) -> None:
    pdu = h("18") + pointer.to_bytes(2, "big")
    assert decode_request(pdu) == ReadFifoQueueRequest(pointer)


# -- 2B / 0E read device identification ----------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "ok"), [(0, False), (1, True), (4, True), (5, False), (0xFF, False)]
)
def test_read_device_id_code_limits(code: int, ok: bool) -> None:
    pdu = h("2B 0E") + bytes((code, 0x00))
    if ok:
        assert decode_request(pdu) == ReadDeviceIdentificationRequest(code, 0)
    else:
        assert reply(pdu) == h("AB 03")


@pytest.mark.parametrize("object_id", [0x00, 0x06, 0x7F, 0x80, 0xFF])
def test_read_device_id_any_object_id_decodes(object_id: int) -> None:
    # Unknown objects are the executor's business (stream: restart at 0; individual: 02).
    pdu = h("2B 0E 04") + bytes((object_id,))
    assert decode_request(pdu) == ReadDeviceIdentificationRequest(4, object_id)


@pytest.mark.parametrize("mei", [0x0D, 0x00, 0x0F, 0xFF])
def test_mei_types_other_than_0e_are_illegal_function(mei: int) -> None:
    # 0x0D is CANopen General Reference, which this server does not support; the rest are
    # reserved.
    assert reply(h("2B") + bytes((mei,)) + h("00 00")) == h("AB 01")
    assert reply(h("2B") + bytes((mei,))) == h("AB 01")


def test_read_device_id_structure_errors() -> None:
    assert reply(h("2B")) == h("AB 03")
    assert reply(h("2B 0E")) == h("AB 03")
    assert reply(h("2B 0E 01")) == h("AB 03")
    assert reply(h("2B 0E 01 00 00")) == h("AB 03")


# -- custom functions ---------------------------------------------------------------------------


class _Custom(ModbusPDU):
    function_code = 0x41

    def decode(self, data: bytes) -> None:
        if len(data) != 2:
            raise ValueError("two bytes expected")
        self.address = int.from_bytes(data, "big")

    def encode(self) -> bytes:
        return self.address.to_bytes(2, "big")


def test_custom_function_decodes_with_its_class() -> None:
    result = decode_request(h("41 12 34"), {0x41: _Custom})
    assert result.function_code == 0x41
    assert result.encode() == h("41 12 34")
    assert result.pdu.address == 0x1234  # type: ignore[union-attr]


def test_custom_decoder_that_raises_is_illegal_data_value() -> None:
    assert decode_request(h("41 12"), {0x41: _Custom}) == Undecodable(
        0x41, ExceptionCode.ILLEGAL_DATA_VALUE, h("41 12")
    )


def test_custom_function_is_not_decoded_without_registration() -> None:
    assert reply(h("41 12 34")) == h("C1 01")


# -- exception replies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fc", "code", "wire"),
    [
        (0x01, ExceptionCode.ILLEGAL_FUNCTION, "81 01"),
        (0x03, ExceptionCode.ILLEGAL_DATA_ADDRESS, "83 02"),
        (0x10, ExceptionCode.ILLEGAL_DATA_VALUE, "90 03"),
        (0x2B, ExceptionCode.SERVER_DEVICE_FAILURE, "AB 04"),
        (0x7F, ExceptionCode.GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND, "FF 0B"),
    ],
)
def test_exception_response_encoding(fc: int, code: ExceptionCode, wire: str) -> None:
    response = ExceptionResponse(fc, code)
    assert response.encode() == h(wire)
    assert response.isError()


def test_exception_codes_have_the_spec_values() -> None:
    assert [int(c) for c in ExceptionCode] == [1, 2, 3, 4, 5, 6, 7, 8, 0x0A, 0x0B]
