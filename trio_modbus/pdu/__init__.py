"""The PDU layer: function codes, request decoding and validation, response encoding.

Pure: no trio, no I/O, no clock, no logging. ``decode_request`` never raises; it returns a
request value or an :class:`Undecodable` carrying the exception the specification prescribes.
``encode_response`` turns any response into the PDU bytes to send.
"""

from trio_modbus.pdu.bits import pack_bits, unpack_bits
from trio_modbus.pdu.codec import MAX_PDU_SIZE, DecodeResult, decode_request
from trio_modbus.pdu.codes import (
    WRITE_FUNCTIONS,
    DiagnosticSubFunction,
    ExceptionCode,
    FunctionCode,
    MEIType,
    ReadDeviceIdCode,
)
from trio_modbus.pdu.pdu import ExceptionResponse, ModbusPDU, Undecodable, encode_response
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

ExcCodes = ExceptionCode  # pymodbus 3.x's name for the exception-code enum

__all__ = [
    "MAX_PDU_SIZE",
    "WRITE_FUNCTIONS",
    "CustomRequest",
    "DecodeResult",
    "DiagnosticRequest",
    "DiagnosticSubFunction",
    "ExcCodes",
    "ExceptionCode",
    "ExceptionResponse",
    "FileRecord",
    "FunctionCode",
    "GetCommEventCounterRequest",
    "GetCommEventLogRequest",
    "MEIType",
    "MaskWriteRegisterRequest",
    "ModbusPDU",
    "ReadBitsRequest",
    "ReadDeviceIdCode",
    "ReadDeviceIdentificationRequest",
    "ReadExceptionStatusRequest",
    "ReadFifoQueueRequest",
    "ReadFileRecordRequest",
    "ReadRegistersRequest",
    "ReadWriteMultipleRegistersRequest",
    "ReportServerIdRequest",
    "Request",
    "Undecodable",
    "WriteFileRecordRequest",
    "WriteMultipleCoilsRequest",
    "WriteMultipleRegistersRequest",
    "WriteSingleCoilRequest",
    "WriteSingleRegisterRequest",
    "decode_request",
    "encode_response",
    "pack_bits",
    "unpack_bits",
]
