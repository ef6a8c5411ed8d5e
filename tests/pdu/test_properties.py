"""Hypothesis properties of the request decoder.

* Arbitrary bytes give a request value or an exception reply (01, 02 or 03), never anything
  else and never an exception. ``nox -s fuzz`` runs these with the "fuzz" Hypothesis profile
  (100 000 examples); the normal run uses the everyday budget of tests/_fuzz.py.
* Every valid request of every type survives ``decode_request(r.encode()) == r``.
"""

from __future__ import annotations

import typing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_modbus.pdu import (
    DiagnosticRequest,
    DiagnosticSubFunction,
    ExceptionCode,
    FileRecord,
    FunctionCode,
    GetCommEventCounterRequest,
    GetCommEventLogRequest,
    MaskWriteRegisterRequest,
    ReadBitsRequest,
    ReadDeviceIdentificationRequest,
    ReadExceptionStatusRequest,
    ReadFifoQueueRequest,
    ReadFileRecordRequest,
    ReadRegistersRequest,
    ReadWriteMultipleRegistersRequest,
    ReportServerIdRequest,
    Request,
    Undecodable,
    WriteFileRecordRequest,
    WriteMultipleCoilsRequest,
    WriteMultipleRegistersRequest,
    WriteSingleCoilRequest,
    WriteSingleRegisterRequest,
    decode_request,
)
from trio_modbus.pdu.codec import MAX_PDU_SIZE

from .._fuzz import fuzz_settings

FUZZ = fuzz_settings()

STANDARD_REQUEST_TYPES = tuple(
    t for t in typing.get_args(Request) if t.__name__ != "CustomRequest"
)
DECODER_ERRORS = {
    ExceptionCode.ILLEGAL_FUNCTION,
    ExceptionCode.ILLEGAL_DATA_ADDRESS,
    ExceptionCode.ILLEGAL_DATA_VALUE,
}

u16 = st.integers(0, 0xFFFF)


def u16_tuples(min_size: int, max_size: int) -> st.SearchStrategy[tuple[int, ...]]:
    """Register values, drawn as bytes (much faster than lists of integers)."""
    return st.binary(min_size=2 * min_size, max_size=2 * max_size).map(
        lambda b: tuple(int.from_bytes(b[i : i + 2], "big") for i in range(0, len(b) - 1, 2))
    )


def bool_tuples(min_size: int, max_size: int) -> st.SearchStrategy[tuple[bool, ...]]:
    """Coil values, drawn as bytes and cut to a drawn length."""
    return st.integers(min_size, max_size).flatmap(
        lambda n: st.binary(min_size=(n + 7) // 8, max_size=(n + 7) // 8).map(
            lambda b: tuple(bool(b[i // 8] >> (i % 8) & 1) for i in range(n))
        )
    )


# -- strategies for valid requests ---------------------------------------------------------------


def file_records(with_values: bool) -> st.SearchStrategy[FileRecord]:
    @st.composite
    def build(draw: st.DrawFn) -> FileRecord:
        record = draw(st.integers(0, 0x270F))
        length = draw(st.integers(1, min(0x2710 - record, 122 if with_values else 124)))
        values = draw(u16_tuples(length, length))
        return FileRecord(
            draw(st.integers(1, 0xFFFF)), record, length, values if with_values else ()
        )

    return build()


def _read_file_fits(records: list[FileRecord]) -> bool:
    return 2 + sum(2 + 2 * r.record_length for r in records) <= MAX_PDU_SIZE


def _write_file_fits(records: list[FileRecord]) -> bool:
    return sum(7 + 2 * r.record_length for r in records) <= 0xFB


diagnostic_requests = st.one_of(
    st.binary(max_size=250).map(lambda d: DiagnosticRequest(0, d)),
    st.sampled_from([b"\x00\x00", b"\xff\x00"]).map(lambda d: DiagnosticRequest(1, d)),
    st.integers(0, 255).map(lambda c: DiagnosticRequest(3, bytes((c, 0)))),
    st.sampled_from([int(s) for s in DiagnosticSubFunction if s not in (0x00, 0x01, 0x03)]).map(
        lambda s: DiagnosticRequest(s, b"\x00\x00")
    ),
)


def _in_address_space(request: Request) -> bool:
    """Ranges end at 0xFFFF at the latest (a range past it is exception 02)."""
    ranges: list[tuple[int, int]] = []
    if isinstance(request, ReadBitsRequest | ReadRegistersRequest):
        ranges.append((request.address, request.count))
    elif isinstance(request, WriteMultipleCoilsRequest | WriteMultipleRegistersRequest):
        ranges.append((request.address, len(request.values)))
    elif isinstance(request, ReadWriteMultipleRegistersRequest):
        ranges.append((request.read_address, request.read_count))
        ranges.append((request.write_address, len(request.write_values)))
    return all(address + count <= 0x10000 for address, count in ranges)


valid_requests: st.SearchStrategy[Request] = st.one_of(
    st.builds(ReadBitsRequest, st.sampled_from([1, 2]), u16, st.integers(1, 2000)),
    st.builds(ReadRegistersRequest, st.sampled_from([3, 4]), u16, st.integers(1, 125)),
    st.builds(WriteSingleCoilRequest, u16, st.booleans()),
    st.builds(WriteSingleRegisterRequest, u16, u16),
    st.just(ReadExceptionStatusRequest()),
    diagnostic_requests,
    st.just(GetCommEventCounterRequest()),
    st.just(GetCommEventLogRequest()),
    st.builds(
        WriteMultipleCoilsRequest,
        u16,
        bool_tuples(1, 1968),
    ),
    st.builds(WriteMultipleRegistersRequest, u16, u16_tuples(1, 123)),
    st.just(ReportServerIdRequest()),
    st.lists(file_records(False), min_size=1, max_size=35)
    .filter(_read_file_fits)
    .map(lambda rs: ReadFileRecordRequest(tuple(rs))),
    st.lists(file_records(True), min_size=1, max_size=4)
    .filter(_write_file_fits)
    .map(lambda rs: WriteFileRecordRequest(tuple(rs))),
    st.builds(MaskWriteRegisterRequest, u16, u16, u16),
    st.builds(
        ReadWriteMultipleRegistersRequest,
        u16,
        st.integers(1, 125),
        u16,
        u16_tuples(1, 121),
    ),
    st.builds(ReadFifoQueueRequest, u16),
    st.builds(ReadDeviceIdentificationRequest, st.integers(1, 4), st.integers(0, 255)),
).filter(_in_address_space)


def test_the_strategy_covers_every_standard_request_type() -> None:
    assert len(STANDARD_REQUEST_TYPES) == 17
    assert {int(fc) for fc in FunctionCode} == {
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x0B, 0x0C,
        0x0F, 0x10, 0x11, 0x14, 0x15, 0x16, 0x17, 0x18, 0x2B,
    }  # fmt: skip


@given(valid_requests)
def test_round_trip(request: Request) -> None:
    pdu = request.encode()
    assert len(pdu) <= MAX_PDU_SIZE
    assert decode_request(pdu) == request


# -- arbitrary bytes -----------------------------------------------------------------------------

KNOWN_CODES = [int(fc) for fc in FunctionCode]


@st.composite
def mutated_requests(draw: st.DrawFn) -> bytes:
    """A valid request with one damage: truncated, extended, or a byte changed."""
    pdu = bytearray(draw(valid_requests).encode())
    how = draw(st.sampled_from(["truncate", "extend", "flip"]))
    if how == "truncate":
        del pdu[draw(st.integers(1, len(pdu))) :]
    elif how == "extend":
        pdu += draw(st.binary(min_size=1, max_size=4))
    else:
        pdu[draw(st.integers(0, len(pdu) - 1))] = draw(st.integers(0, 255))
    return bytes(pdu)


arbitrary_pdus = st.one_of(
    st.binary(max_size=300),
    st.tuples(st.sampled_from(KNOWN_CODES), st.binary(max_size=260)).map(
        lambda t: bytes((t[0],)) + t[1]
    ),
    mutated_requests(),
)


def check_decode(pdu: bytes) -> None:
    result = decode_request(pdu)
    if isinstance(result, Undecodable):
        assert result.exception_code in DECODER_ERRORS
        assert result.function_code == (pdu[0] if pdu else 0)
        assert result.pdu == pdu
        wire = result.response().encode()
        assert len(wire) == 2 and wire[0] & 0x80
        return
    assert isinstance(result, STANDARD_REQUEST_TYPES), type(result)
    assert result.function_code == pdu[0]
    assert len(pdu) <= MAX_PDU_SIZE
    # A request the decoder accepted is a valid request: it survives its own round trip.
    assert decode_request(result.encode()) == result


@pytest.mark.fuzz
@FUZZ
@given(arbitrary_pdus)
def test_arbitrary_bytes_give_a_request_or_an_exception_code(pdu: bytes) -> None:
    check_decode(pdu)


@pytest.mark.fuzz
@FUZZ
@given(valid_requests)
def test_round_trip_fuzz(request: Request) -> None:
    assert decode_request(request.encode()) == request
