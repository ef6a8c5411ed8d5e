"""``ModbusPDU``, ``ExceptionResponse``, ``Undecodable`` and ``encode_response``."""

from __future__ import annotations

from typing import Any

import pytest

from trio_modbus.pdu import (
    ExcCodes,
    ExceptionCode,
    ExceptionResponse,
    ModbusPDU,
    Undecodable,
    encode_response,
)


class Fixed(ModbusPDU):
    function_code = 0x41
    rtu_frame_size = 8


class Counted(ModbusPDU):
    function_code = 0x42
    rtu_byte_count_pos = 2


def test_defaults_and_keywords() -> None:
    pdu = ModbusPDU(address=5, count=2, registers=[1, 2], slave=7, extra="x")
    assert (pdu.address, pdu.count, pdu.registers, pdu.bits) == (5, 2, [1, 2], [])
    assert pdu.dev_id == pdu.slave_id == 7
    assert pdu.extra == "x"  # type: ignore[attr-defined]
    assert ModbusPDU(device_id=3).dev_id == 3


def test_encode_and_decode_must_be_implemented() -> None:
    with pytest.raises(NotImplementedError):
        ModbusPDU().encode()
    with pytest.raises(NotImplementedError):
        ModbusPDU().decode(b"")


def test_do_exception() -> None:
    response = Fixed().doException(2)
    assert response == ExceptionResponse(0x41, ExceptionCode.ILLEGAL_DATA_ADDRESS)
    assert response.encode() == bytes.fromhex("C1 02")
    assert response.isError()
    assert not Fixed().isError()


def test_rtu_frame_size() -> None:
    assert Fixed.calculateRtuFrameSize(b"\x01\x41") == 8
    # unit, fc, byte count 4: unit + fc + count + 4 data + 2 CRC = 9
    assert Counted.calculateRtuFrameSize(b"\x01\x42") == 0
    assert Counted.calculateRtuFrameSize(b"\x01\x42\x04") == 9
    with pytest.raises(NotImplementedError):
        ModbusPDU.calculateRtuFrameSize(b"\x01\x41")


def test_pymodbus_name_of_the_exception_code_enum() -> None:
    assert ExcCodes is ExceptionCode
    assert ExcCodes.ILLEGAL_DATA_VALUE == 3


def test_undecodable_answers_with_its_exception_response() -> None:
    undecodable = Undecodable(0x03, ExceptionCode.ILLEGAL_DATA_VALUE, bytes.fromhex("03 00"))
    assert undecodable.response() == ExceptionResponse(0x03, ExceptionCode.ILLEGAL_DATA_VALUE)
    assert encode_response(undecodable.response()) == bytes.fromhex("83 03")


class Echo(ModbusPDU):
    function_code = 0x41

    def encode(self) -> bytes:
        return bytes.fromhex("12 34")


def test_encode_response_takes_every_form_of_response() -> None:
    pdu = bytes.fromhex("06 00 01 00 03")
    assert encode_response(pdu) is pdu
    assert encode_response(ExceptionResponse(0x10, ExceptionCode.SERVER_DEVICE_BUSY)) == (
        bytes.fromhex("90 06")
    )
    # A ModbusPDU's encode() gives the data after the function code (the custom contract).
    assert encode_response(Echo()) == bytes.fromhex("41 12 34")


def test_encode_response_of_a_bytes_subclass_is_plain_bytes() -> None:
    class Tagged(bytes):
        pass

    result = encode_response(Tagged(b"\x07\x00"))
    assert type(result) is bytes
    assert result == b"\x07\x00"


def test_encode_response_refuses_a_pdu_without_a_function_code() -> None:
    class NoCode(ModbusPDU):
        def encode(self) -> bytes:
            return b""

    with pytest.raises(ValueError, match="function_code"):
        encode_response(NoCode())


@pytest.mark.parametrize("value", [None, 3, "03 00", bytearray(b"\x03")])
def test_encode_response_refuses_what_is_not_a_response(value: Any) -> None:
    with pytest.raises(TypeError, match="not"):
        encode_response(value)
