"""Request decoding with the specification's validation order.

``decode_request`` turns a request PDU (function code + data) into a request value or an
:class:`~trio_modbus.pdu.pdu.Undecodable` (the PDU and the exception code that answers it); it
never raises for any input. The checks run in the order of the specification's state diagrams:
function (and sub-function) supported, else 01 ILLEGAL FUNCTION; then the request's structure
(PDU length, quantities, byte counts, fixed values), else 03 ILLEGAL DATA VALUE; then checks on
addresses that need no datastore (file record references), else 02 ILLEGAL DATA ADDRESS.
Address ranges against the datastore (02) and execution (04) are the service's business.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping

from trio_modbus._layouts import ADDRESS_SPACE as ADDRESS_SPACE
from trio_modbus._layouts import DIAGNOSTIC_HEADER as _DIAGNOSTIC_HEADER
from trio_modbus._layouts import LAYOUTS as _LAYOUTS
from trio_modbus._layouts import MAX_FILE_RECORD_NUMBER as MAX_FILE_RECORD_NUMBER
from trio_modbus._layouts import MAX_PDU_SIZE as MAX_PDU_SIZE
from trio_modbus._layouts import MAX_READ_BITS as MAX_READ_BITS
from trio_modbus._layouts import MAX_READ_REGISTERS as MAX_READ_REGISTERS
from trio_modbus._layouts import MAX_RW_WRITE_REGISTERS as MAX_RW_WRITE_REGISTERS
from trio_modbus._layouts import MAX_WRITE_COILS as MAX_WRITE_COILS
from trio_modbus._layouts import MAX_WRITE_REGISTERS as MAX_WRITE_REGISTERS
from trio_modbus._layouts import MEI_HEADER as _MEI_HEADER
from trio_modbus.pdu.bits import unpack_bits
from trio_modbus.pdu.codes import DiagnosticSubFunction, ExceptionCode, FunctionCode, MEIType
from trio_modbus.pdu.pdu import ModbusPDU, Undecodable
from trio_modbus.pdu.requests import (
    CustomRequest,
    DiagnosticRequest,
    FileRecord,
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
    WriteFileRecordRequest,
    WriteMultipleCoilsRequest,
    WriteMultipleRegistersRequest,
    WriteSingleCoilRequest,
    WriteSingleRegisterRequest,
)

__all__ = ["MAX_PDU_SIZE", "DecodeResult", "decode_request"]

FILE_REFERENCE_TYPE = 6

# Request PDU lengths (function code included), from the layout table.
_ADDRESS_VALUE_LENGTH = _LAYOUTS[FunctionCode.READ_COILS].request.size  # 01..06
_NO_DATA_LENGTH = _LAYOUTS[FunctionCode.READ_EXCEPTION_STATUS].request.size  # 07 0B 0C 11
_DIAGNOSTIC_LENGTH = _LAYOUTS[FunctionCode.DIAGNOSTICS].request.size  # but sub-function 0000
_MASK_WRITE_LENGTH = _LAYOUTS[FunctionCode.MASK_WRITE_REGISTER].request.size
_FIFO_LENGTH = _LAYOUTS[FunctionCode.READ_FIFO_QUEUE].request.size
_DEVICE_ID_LENGTH = _LAYOUTS[FunctionCode.ENCAPSULATED_INTERFACE_TRANSPORT].request.size
# Headers up to and including the byte count, which counts the bytes that follow.
_WRITE_HEADER = _LAYOUTS[FunctionCode.WRITE_MULTIPLE_COILS].request.size  # 0F 10
_FILE_HEADER = _LAYOUTS[FunctionCode.READ_FILE_RECORD].request.size  # 14 15
_READ_WRITE_HEADER = _LAYOUTS[FunctionCode.READ_WRITE_MULTIPLE_REGISTERS].request.size

DecodeResult = Request | Undecodable
"""What :func:`decode_request` returns: a request or a :class:`~.pdu.Undecodable`."""

_ADDR_QTY = struct.Struct(">HH")
_ADDR_QTY_BC = struct.Struct(">HHB")
_RW_HEADER = struct.Struct(">HHHHB")
_MASK = struct.Struct(">HHH")
_U16 = struct.Struct(">H")
_FILE_SUB = struct.Struct(">BHHH")

_ILLEGAL_FUNCTION = ExceptionCode.ILLEGAL_FUNCTION
_ILLEGAL_ADDRESS = ExceptionCode.ILLEGAL_DATA_ADDRESS
_ILLEGAL_VALUE = ExceptionCode.ILLEGAL_DATA_VALUE

_SUPPORTED_DIAGNOSTICS = frozenset(int(s) for s in DiagnosticSubFunction)


def _read_bits(pdu: bytes) -> DecodeResult:
    fc = pdu[0]
    if len(pdu) != _ADDRESS_VALUE_LENGTH:
        return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    address, count = _ADDR_QTY.unpack_from(pdu, 1)
    if not 1 <= count <= MAX_READ_BITS:
        return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    if address + count > ADDRESS_SPACE:
        return Undecodable(fc, _ILLEGAL_ADDRESS, pdu)
    return ReadBitsRequest(fc, address, count)


def _read_registers(pdu: bytes) -> DecodeResult:
    fc = pdu[0]
    if len(pdu) != _ADDRESS_VALUE_LENGTH:
        return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    address, count = _ADDR_QTY.unpack_from(pdu, 1)
    if not 1 <= count <= MAX_READ_REGISTERS:
        return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    if address + count > ADDRESS_SPACE:
        return Undecodable(fc, _ILLEGAL_ADDRESS, pdu)
    return ReadRegistersRequest(fc, address, count)


def _write_single_coil(pdu: bytes) -> DecodeResult:
    if len(pdu) != _ADDRESS_VALUE_LENGTH:
        return Undecodable(pdu[0], _ILLEGAL_VALUE, pdu)
    address, value = _ADDR_QTY.unpack_from(pdu, 1)
    if value == 0xFF00:
        return WriteSingleCoilRequest(address, True)
    if value == 0x0000:
        return WriteSingleCoilRequest(address, False)
    return Undecodable(pdu[0], _ILLEGAL_VALUE, pdu)


def _write_single_register(pdu: bytes) -> DecodeResult:
    if len(pdu) != _ADDRESS_VALUE_LENGTH:
        return Undecodable(pdu[0], _ILLEGAL_VALUE, pdu)
    address, value = _ADDR_QTY.unpack_from(pdu, 1)
    return WriteSingleRegisterRequest(address, value)


def _no_data(request: Request) -> Callable[[bytes], DecodeResult]:
    def decode(pdu: bytes) -> DecodeResult:
        if len(pdu) != _NO_DATA_LENGTH:
            return Undecodable(pdu[0], _ILLEGAL_VALUE, pdu)
        return request

    return decode


def _diagnostics(pdu: bytes) -> DecodeResult:
    fc = pdu[0]
    if len(pdu) < _DIAGNOSTIC_HEADER:
        # Too short to name a sub-function: a structural error.
        return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    (sub,) = _U16.unpack_from(pdu, 1)
    if sub not in _SUPPORTED_DIAGNOSTICS:
        return Undecodable(fc, _ILLEGAL_FUNCTION, pdu)
    data = pdu[3:]
    if sub == DiagnosticSubFunction.RETURN_QUERY_DATA:
        return DiagnosticRequest(sub, data)
    if len(pdu) != _DIAGNOSTIC_LENGTH:
        return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    if sub == DiagnosticSubFunction.RESTART_COMMUNICATIONS_OPTION:
        if data not in (b"\x00\x00", b"\xff\x00"):
            return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    elif sub == DiagnosticSubFunction.CHANGE_ASCII_INPUT_DELIMITER:
        # Data field: the new delimiter character, then 0x00.
        if data[1] != 0:
            return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    elif data != b"\x00\x00":
        return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    return DiagnosticRequest(sub, data)


def _write_multiple_coils(pdu: bytes) -> DecodeResult:
    fc = pdu[0]
    if len(pdu) < _WRITE_HEADER:
        return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    address, count, byte_count = _ADDR_QTY_BC.unpack_from(pdu, 1)
    if (
        not 1 <= count <= MAX_WRITE_COILS
        or byte_count != (count + 7) // 8
        or len(pdu) != _WRITE_HEADER + byte_count
    ):
        return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    if address + count > ADDRESS_SPACE:
        return Undecodable(fc, _ILLEGAL_ADDRESS, pdu)
    return WriteMultipleCoilsRequest(address, tuple(unpack_bits(pdu[6:], count)))


def _write_multiple_registers(pdu: bytes) -> DecodeResult:
    fc = pdu[0]
    if len(pdu) < _WRITE_HEADER:
        return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    address, count, byte_count = _ADDR_QTY_BC.unpack_from(pdu, 1)
    if (
        not 1 <= count <= MAX_WRITE_REGISTERS
        or byte_count != 2 * count
        or len(pdu) != _WRITE_HEADER + byte_count
    ):
        return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    if address + count > ADDRESS_SPACE:
        return Undecodable(fc, _ILLEGAL_ADDRESS, pdu)
    return WriteMultipleRegistersRequest(address, struct.unpack_from(f">{count}H", pdu, 6))


def _check_file_reference(record: FileRecord) -> bool:
    """The address checks of a file sub-request (failing ones are answered with 02)."""
    return (
        record.reference_type == FILE_REFERENCE_TYPE
        and record.file_number >= 1
        and record.record_number <= MAX_FILE_RECORD_NUMBER
        and record.record_number + record.record_length <= MAX_FILE_RECORD_NUMBER + 1
    )


def _read_file_record(pdu: bytes) -> DecodeResult:
    fc = pdu[0]
    if len(pdu) < _FILE_HEADER:
        return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    byte_count = pdu[1]
    if not 0x07 <= byte_count <= 0xF5 or byte_count % 7 or len(pdu) != _FILE_HEADER + byte_count:
        return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    records = tuple(
        FileRecord(file_number, record_number, length, (), ref_type)
        for ref_type, file_number, record_number, length in _FILE_SUB.iter_unpack(pdu[2:])
    )
    # The reply (fc, length byte, per record: length byte, reference type, 2 bytes a record)
    # must fit a PDU; a record length of 0 asks for nothing, which is not a valid quantity.
    reply_size = 2 + sum(2 + 2 * r.record_length for r in records)
    if reply_size > MAX_PDU_SIZE or any(r.record_length == 0 for r in records):
        return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    if not all(_check_file_reference(r) for r in records):
        return Undecodable(fc, _ILLEGAL_ADDRESS, pdu)
    return ReadFileRecordRequest(records)


def _write_file_record(pdu: bytes) -> DecodeResult:
    fc = pdu[0]
    if len(pdu) < _FILE_HEADER:
        return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    length = pdu[1]
    if not 0x09 <= length <= 0xFB or len(pdu) != _FILE_HEADER + length:
        return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    records: list[FileRecord] = []
    offset, end = 2, 2 + length
    while offset < end:
        if end - offset < 9:  # a sub-request has a 7-byte header and at least one record
            return Undecodable(fc, _ILLEGAL_VALUE, pdu)
        ref_type, file_number, record_number, count = _FILE_SUB.unpack_from(pdu, offset)
        offset += 7
        if count == 0 or offset + 2 * count > end:
            return Undecodable(fc, _ILLEGAL_VALUE, pdu)
        values = struct.unpack_from(f">{count}H", pdu, offset)
        offset += 2 * count
        records.append(FileRecord(file_number, record_number, count, values, ref_type))
    if not all(_check_file_reference(r) for r in records):
        return Undecodable(fc, _ILLEGAL_ADDRESS, pdu)
    return WriteFileRecordRequest(tuple(records))


def _mask_write_register(pdu: bytes) -> DecodeResult:
    if len(pdu) != _MASK_WRITE_LENGTH:
        return Undecodable(pdu[0], _ILLEGAL_VALUE, pdu)
    return MaskWriteRegisterRequest(*_MASK.unpack_from(pdu, 1))


def _read_write_registers(pdu: bytes) -> DecodeResult:
    fc = pdu[0]
    if len(pdu) < _READ_WRITE_HEADER:
        return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    read_address, read_count, write_address, write_count, byte_count = _RW_HEADER.unpack_from(
        pdu, 1
    )
    if (
        not 1 <= read_count <= MAX_READ_REGISTERS
        or not 1 <= write_count <= MAX_RW_WRITE_REGISTERS
        or byte_count != 2 * write_count
        or len(pdu) != _READ_WRITE_HEADER + byte_count
    ):
        return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    if read_address + read_count > ADDRESS_SPACE or write_address + write_count > ADDRESS_SPACE:
        return Undecodable(fc, _ILLEGAL_ADDRESS, pdu)
    values = struct.unpack_from(f">{write_count}H", pdu, 10)
    return ReadWriteMultipleRegistersRequest(read_address, read_count, write_address, values)


def _read_fifo_queue(pdu: bytes) -> DecodeResult:
    if len(pdu) != _FIFO_LENGTH:
        return Undecodable(pdu[0], _ILLEGAL_VALUE, pdu)
    return ReadFifoQueueRequest(_U16.unpack_from(pdu, 1)[0])


def _encapsulated_interface(pdu: bytes) -> DecodeResult:
    fc = pdu[0]
    if len(pdu) < _MEI_HEADER:
        return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    if pdu[1] != MEIType.READ_DEVICE_IDENTIFICATION:
        # 0x0D (CANopen General Reference) and every undefined MEI type: not supported.
        return Undecodable(fc, _ILLEGAL_FUNCTION, pdu)
    if len(pdu) != _DEVICE_ID_LENGTH or not 1 <= pdu[2] <= 4:
        return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    return ReadDeviceIdentificationRequest(pdu[2], pdu[3])


_DECODERS: dict[int, Callable[[bytes], DecodeResult]] = {
    FunctionCode.READ_COILS: _read_bits,
    FunctionCode.READ_DISCRETE_INPUTS: _read_bits,
    FunctionCode.READ_HOLDING_REGISTERS: _read_registers,
    FunctionCode.READ_INPUT_REGISTERS: _read_registers,
    FunctionCode.WRITE_SINGLE_COIL: _write_single_coil,
    FunctionCode.WRITE_SINGLE_REGISTER: _write_single_register,
    FunctionCode.READ_EXCEPTION_STATUS: _no_data(ReadExceptionStatusRequest()),
    FunctionCode.DIAGNOSTICS: _diagnostics,
    FunctionCode.GET_COMM_EVENT_COUNTER: _no_data(GetCommEventCounterRequest()),
    FunctionCode.GET_COMM_EVENT_LOG: _no_data(GetCommEventLogRequest()),
    FunctionCode.WRITE_MULTIPLE_COILS: _write_multiple_coils,
    FunctionCode.WRITE_MULTIPLE_REGISTERS: _write_multiple_registers,
    FunctionCode.REPORT_SERVER_ID: _no_data(ReportServerIdRequest()),
    FunctionCode.READ_FILE_RECORD: _read_file_record,
    FunctionCode.WRITE_FILE_RECORD: _write_file_record,
    FunctionCode.MASK_WRITE_REGISTER: _mask_write_register,
    FunctionCode.READ_WRITE_MULTIPLE_REGISTERS: _read_write_registers,
    FunctionCode.READ_FIFO_QUEUE: _read_fifo_queue,
    FunctionCode.ENCAPSULATED_INTERFACE_TRANSPORT: _encapsulated_interface,
}


def _decode_custom(cls: type[ModbusPDU], pdu: bytes) -> DecodeResult:
    try:
        instance = cls()
        instance.decode(pdu[1:])
    except Exception:
        # A user decoder that refuses the bytes: the request's structure is wrong.
        return Undecodable(pdu[0], _ILLEGAL_VALUE, pdu)
    return CustomRequest(instance)


def decode_request(
    pdu: bytes, custom: Mapping[int, type[ModbusPDU]] | None = None
) -> DecodeResult:
    """Decode and validate a request PDU.

    Args:
        pdu: Function code followed by the request data, as a framer delivers it.
        custom: User-defined functions by function code; they take precedence over the
            standard decoders, so a standard function code can be replaced.

    Returns:
        The request value, or an :class:`~trio_modbus.pdu.pdu.Undecodable` carrying the PDU and the
        exception code that answers it (01 unsupported function or sub-function, 03 bad structure
        or quantity, 02 bad file reference); its ``response()`` is the exception response to
        send. An empty PDU yields exception 01 for function code 0.
    """
    if not pdu:
        return Undecodable(0, _ILLEGAL_FUNCTION, pdu)
    fc = pdu[0]
    custom_class = custom.get(fc) if custom else None
    decoder = _DECODERS.get(fc)
    if custom_class is None and decoder is None:
        return Undecodable(fc, _ILLEGAL_FUNCTION, pdu)
    if len(pdu) > MAX_PDU_SIZE:
        # Framers deliver PDUs a few bytes past the limit so that they are answered here.
        return Undecodable(fc, _ILLEGAL_VALUE, pdu)
    if custom_class is not None:
        return _decode_custom(custom_class, pdu)
    assert decoder is not None
    return decoder(pdu)
