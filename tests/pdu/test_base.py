"""The custom-function base class ``ModbusPDU`` and ``ExceptionResponse``."""

from __future__ import annotations

import pytest

from trio_modbus.pdu import ExcCodes, ExceptionCode, ExceptionResponse, ModbusPDU


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
