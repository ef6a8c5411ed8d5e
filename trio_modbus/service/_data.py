"""The data-access function group: bits, registers, file records and the FIFO queue.

Each handler takes (request, device context, request context) and returns the reply; a
datastore that refuses (``validate`` false, or an int exception code from ``getValues`` /
``setValues``) is answered with that exception. Anything else a datastore raises escapes to
the service, which answers 04.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from trio_modbus.pdu import responses as enc
from trio_modbus.pdu.codes import ExceptionCode, FunctionCode
from trio_modbus.pdu.pdu import ExceptionResponse
from trio_modbus.pdu.requests import (
    MaskWriteRegisterRequest,
    ReadBitsRequest,
    ReadFifoQueueRequest,
    ReadFileRecordRequest,
    ReadRegistersRequest,
    ReadWriteMultipleRegistersRequest,
    WriteFileRecordRequest,
    WriteMultipleCoilsRequest,
    WriteMultipleRegistersRequest,
    WriteSingleCoilRequest,
    WriteSingleRegisterRequest,
)

from ._context import Handler, RequestContext, Response

MAX_FIFO_COUNT = 31  # 0x18: a queue longer than this is answered with 03

_ILLEGAL_FUNCTION = ExceptionCode.ILLEGAL_FUNCTION
_ILLEGAL_ADDRESS = ExceptionCode.ILLEGAL_DATA_ADDRESS
_ILLEGAL_VALUE = ExceptionCode.ILLEGAL_DATA_VALUE


class DeviceContext(Protocol):
    """What the service needs of a device context (``ModbusBaseDeviceContext``)."""

    def validate(self, fx: int, address: int, count: int = 1) -> bool: ...
    def getValues(self, fx: int, address: int, count: int = 1) -> Any: ...
    def setValues(self, fx: int, address: int, values: Any) -> Any: ...


def _exception(fc: int, code: int) -> ExceptionResponse:
    return ExceptionResponse(fc, ExceptionCode(code))


def _read_values(device: DeviceContext, fc: int, address: int, count: int) -> Any:
    """Validate and read; an ExceptionResponse when refused."""
    if not device.validate(fc, address, count):
        return ExceptionResponse(fc, _ILLEGAL_ADDRESS)
    values = device.getValues(fc, address, count)
    if isinstance(values, int):
        return _exception(fc, values)
    if len(values) != count:
        raise ValueError(f"datastore returned {len(values)} values for {count}")
    return values


def _write_values(
    device: DeviceContext, fc: int, address: int, values: Sequence[Any], reply_fc: int = 0
) -> ExceptionResponse | None:
    """Validate and write; an ExceptionResponse when refused."""
    reply_fc = reply_fc or fc
    if not device.validate(fc, address, len(values)):
        return ExceptionResponse(reply_fc, _ILLEGAL_ADDRESS)
    result = device.setValues(fc, address, list(values))
    if isinstance(result, int):
        return _exception(reply_fc, result)
    return None


# -- bit and register access -----------------------------------------------------------------


def _read_bits(req: ReadBitsRequest, device: DeviceContext, _: RequestContext) -> Response:
    values = _read_values(device, req.function_code, req.address, req.count)
    if type(values) is ExceptionResponse:
        return values
    return enc.encode_read_bits(req.function_code, values)


def _read_registers(
    req: ReadRegistersRequest, device: DeviceContext, _: RequestContext
) -> Response:
    values = _read_values(device, req.function_code, req.address, req.count)
    if type(values) is ExceptionResponse:
        return values
    return enc.encode_read_registers(req.function_code, values)


def _write_single_coil(
    req: WriteSingleCoilRequest, device: DeviceContext, _: RequestContext
) -> Response:
    refused = _write_values(device, req.function_code, req.address, [req.value])
    return refused or req.encode()


def _write_single_register(
    req: WriteSingleRegisterRequest, device: DeviceContext, _: RequestContext
) -> Response:
    refused = _write_values(device, req.function_code, req.address, [req.value])
    return refused or req.encode()


def _write_multiple_coils(
    req: WriteMultipleCoilsRequest, device: DeviceContext, _: RequestContext
) -> Response:
    refused = _write_values(device, req.function_code, req.address, req.values)
    return refused or enc.encode_write_multiple(req.function_code, req.address, len(req.values))


def _write_multiple_registers(
    req: WriteMultipleRegistersRequest, device: DeviceContext, _: RequestContext
) -> Response:
    refused = _write_values(device, req.function_code, req.address, req.values)
    return refused or enc.encode_write_multiple(req.function_code, req.address, len(req.values))


def _mask_write_register(
    req: MaskWriteRegisterRequest, device: DeviceContext, _: RequestContext
) -> Response:
    fc = req.function_code
    current = _read_values(device, fc, req.address, 1)
    if type(current) is ExceptionResponse:
        return current
    value = (current[0] & req.and_mask) | (req.or_mask & ~req.and_mask & 0xFFFF)
    refused = _write_values(device, fc, req.address, [value])
    return refused or req.encode()


def _read_write_registers(
    req: ReadWriteMultipleRegistersRequest, device: DeviceContext, _: RequestContext
) -> Response:
    fc = req.function_code
    # Both ranges are checked before anything is written; the write happens first.
    read_fc = FunctionCode.READ_HOLDING_REGISTERS
    write_fc = FunctionCode.WRITE_MULTIPLE_REGISTERS
    if not device.validate(read_fc, req.read_address, req.read_count):
        return ExceptionResponse(fc, _ILLEGAL_ADDRESS)
    refused = _write_values(device, write_fc, req.write_address, req.write_values, reply_fc=fc)
    if refused is not None:
        return refused
    values = device.getValues(read_fc, req.read_address, req.read_count)
    if isinstance(values, int):
        return _exception(fc, values)
    return enc.encode_read_registers(fc, values)


# -- files and FIFO --------------------------------------------------------------------------


def _read_file_record(req: ReadFileRecordRequest, device: Any, _: RequestContext) -> Response:
    fc = req.function_code
    reader = getattr(device, "read_file_record", None)
    if reader is None:
        return ExceptionResponse(fc, _ILLEGAL_FUNCTION)
    results = []
    for record in req.records:
        values = reader(record.file_number, record.record_number, record.record_length)
        if isinstance(values, int):
            return _exception(fc, values)
        results.append(values)
    return enc.encode_read_file_record(results)


def _write_file_record(req: WriteFileRecordRequest, device: Any, _: RequestContext) -> Response:
    fc = req.function_code
    reader = getattr(device, "read_file_record", None)
    writer = getattr(device, "write_file_record", None)
    if reader is None or writer is None:
        return ExceptionResponse(fc, _ILLEGAL_FUNCTION)
    # Check every range before writing any, so a refused request changes nothing.
    for record in req.records:
        existing = reader(record.file_number, record.record_number, record.record_length)
        if isinstance(existing, int):
            return _exception(fc, existing)
    for record in req.records:
        result = writer(record.file_number, record.record_number, list(record.values))
        if isinstance(result, int):
            return _exception(fc, result)
    return req.encode()


def _read_fifo_queue(req: ReadFifoQueueRequest, device: Any, _: RequestContext) -> Response:
    fc = req.function_code
    reader = getattr(device, "read_fifo_queue", None)
    if reader is None:
        return ExceptionResponse(fc, _ILLEGAL_FUNCTION)
    values = reader(req.address)
    if isinstance(values, int):
        return _exception(fc, values)
    if len(values) > MAX_FIFO_COUNT:
        return ExceptionResponse(fc, _ILLEGAL_VALUE)
    return enc.encode_fifo_queue(values)


DATA_HANDLERS: dict[type, Handler] = {
    ReadBitsRequest: _read_bits,
    ReadRegistersRequest: _read_registers,
    WriteSingleCoilRequest: _write_single_coil,
    WriteSingleRegisterRequest: _write_single_register,
    WriteMultipleCoilsRequest: _write_multiple_coils,
    WriteMultipleRegistersRequest: _write_multiple_registers,
    ReadFileRecordRequest: _read_file_record,
    WriteFileRecordRequest: _write_file_record,
    MaskWriteRegisterRequest: _mask_write_register,
    ReadWriteMultipleRegistersRequest: _read_write_registers,
    ReadFifoQueueRequest: _read_fifo_queue,
}
"""The handler of each data-access request type."""
