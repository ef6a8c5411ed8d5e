"""Decoded request values, one frozen dataclass per function code.

Every value has a ``function_code`` and an ``encode()`` that gives the request PDU back
(function code first), so that ``decode_request(r.encode()) == r`` for every valid request.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from trio_modbus.pdu.bits import pack_bits
from trio_modbus.pdu.codes import FunctionCode, MEIType

if TYPE_CHECKING:
    from trio_modbus.pdu.pdu import ModbusPDU

__all__ = [
    "CustomRequest",
    "DiagnosticRequest",
    "FileRecord",
    "GetCommEventCounterRequest",
    "GetCommEventLogRequest",
    "MaskWriteRegisterRequest",
    "ReadBitsRequest",
    "ReadDeviceIdentificationRequest",
    "ReadExceptionStatusRequest",
    "ReadFifoQueueRequest",
    "ReadFileRecordRequest",
    "ReadRegistersRequest",
    "ReadWriteMultipleRegistersRequest",
    "ReportServerIdRequest",
    "Request",
    "WriteFileRecordRequest",
    "WriteMultipleCoilsRequest",
    "WriteMultipleRegistersRequest",
    "WriteSingleCoilRequest",
    "WriteSingleRegisterRequest",
]

_HH = struct.Struct(">BHH")
_HHH = struct.Struct(">BHHH")


@dataclass(frozen=True, slots=True)
class ReadBitsRequest:
    """0x01 Read Coils or 0x02 Read Discrete Inputs."""

    function_code: int
    address: int
    count: int

    def encode(self) -> bytes:
        """Return the request PDU."""
        return _HH.pack(self.function_code, self.address, self.count)


@dataclass(frozen=True, slots=True)
class ReadRegistersRequest:
    """0x03 Read Holding Registers or 0x04 Read Input Registers."""

    function_code: int
    address: int
    count: int

    def encode(self) -> bytes:
        """Return the request PDU."""
        return _HH.pack(self.function_code, self.address, self.count)


@dataclass(frozen=True, slots=True)
class WriteSingleCoilRequest:
    """0x05 Write Single Coil (on the wire 0xFF00 = on, 0x0000 = off)."""

    function_code: ClassVar[int] = FunctionCode.WRITE_SINGLE_COIL
    address: int
    value: bool

    def encode(self) -> bytes:
        """Return the request PDU."""
        return _HH.pack(self.function_code, self.address, 0xFF00 if self.value else 0)


@dataclass(frozen=True, slots=True)
class WriteSingleRegisterRequest:
    """0x06 Write Single Register."""

    function_code: ClassVar[int] = FunctionCode.WRITE_SINGLE_REGISTER
    address: int
    value: int

    def encode(self) -> bytes:
        """Return the request PDU."""
        return _HH.pack(self.function_code, self.address, self.value)


@dataclass(frozen=True, slots=True)
class ReadExceptionStatusRequest:
    """0x07 Read Exception Status."""

    function_code: ClassVar[int] = FunctionCode.READ_EXCEPTION_STATUS

    def encode(self) -> bytes:
        """Return the request PDU."""
        return b"\x07"


@dataclass(frozen=True, slots=True)
class DiagnosticRequest:
    """0x08 Diagnostics: a sub-function and its data field (echoed by most sub-functions)."""

    function_code: ClassVar[int] = FunctionCode.DIAGNOSTICS
    sub_function: int
    data: bytes

    def encode(self) -> bytes:
        """Return the request PDU."""
        return struct.pack(">BH", self.function_code, self.sub_function) + self.data


@dataclass(frozen=True, slots=True)
class GetCommEventCounterRequest:
    """0x0B Get Comm Event Counter."""

    function_code: ClassVar[int] = FunctionCode.GET_COMM_EVENT_COUNTER

    def encode(self) -> bytes:
        """Return the request PDU."""
        return b"\x0b"


@dataclass(frozen=True, slots=True)
class GetCommEventLogRequest:
    """0x0C Get Comm Event Log."""

    function_code: ClassVar[int] = FunctionCode.GET_COMM_EVENT_LOG

    def encode(self) -> bytes:
        """Return the request PDU."""
        return b"\x0c"


@dataclass(frozen=True, slots=True)
class WriteMultipleCoilsRequest:
    """0x0F Write Multiple Coils."""

    function_code: ClassVar[int] = FunctionCode.WRITE_MULTIPLE_COILS
    address: int
    values: tuple[bool, ...]

    def encode(self) -> bytes:
        """Return the request PDU."""
        packed = pack_bits(self.values)
        return _HH.pack(self.function_code, self.address, len(self.values)) + (
            bytes((len(packed),)) + packed
        )


@dataclass(frozen=True, slots=True)
class WriteMultipleRegistersRequest:
    """0x10 Write Multiple Registers."""

    function_code: ClassVar[int] = FunctionCode.WRITE_MULTIPLE_REGISTERS
    address: int
    values: tuple[int, ...]

    def encode(self) -> bytes:
        """Return the request PDU."""
        n = len(self.values)
        return _HH.pack(self.function_code, self.address, n) + struct.pack(
            f">B{n}H", 2 * n, *self.values
        )


@dataclass(frozen=True, slots=True)
class ReportServerIdRequest:
    """0x11 Report Server ID."""

    function_code: ClassVar[int] = FunctionCode.REPORT_SERVER_ID

    def encode(self) -> bytes:
        """Return the request PDU."""
        return b"\x11"


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One sub-request of 0x14 / 0x15: a range of 16-bit records in one file.

    Attributes:
        file_number: File number (1..0xFFFF).
        record_number: First record (0..0x270F).
        record_length: Number of 16-bit records.
        values: The records to write (0x15 only; empty for 0x14).
        reference_type: Always 6 in a valid request.
    """

    file_number: int
    record_number: int
    record_length: int
    values: tuple[int, ...] = ()
    reference_type: int = 6


@dataclass(frozen=True, slots=True)
class ReadFileRecordRequest:
    """0x14 Read File Record: one or more record ranges."""

    function_code: ClassVar[int] = FunctionCode.READ_FILE_RECORD
    records: tuple[FileRecord, ...]

    def encode(self) -> bytes:
        """Return the request PDU."""
        body = b"".join(
            struct.pack(">BHHH", r.reference_type, r.file_number, r.record_number, r.record_length)
            for r in self.records
        )
        return bytes((self.function_code, len(body))) + body


@dataclass(frozen=True, slots=True)
class WriteFileRecordRequest:
    """0x15 Write File Record: one or more record ranges with their data."""

    function_code: ClassVar[int] = FunctionCode.WRITE_FILE_RECORD
    records: tuple[FileRecord, ...]

    def encode(self) -> bytes:
        """Return the request PDU (the reply echoes it)."""
        body = b"".join(
            struct.pack(
                f">BHHH{len(r.values)}H",
                r.reference_type,
                r.file_number,
                r.record_number,
                r.record_length,
                *r.values,
            )
            for r in self.records
        )
        return bytes((self.function_code, len(body))) + body


@dataclass(frozen=True, slots=True)
class MaskWriteRegisterRequest:
    """0x16 Mask Write Register: ``(current AND and_mask) OR (or_mask AND NOT and_mask)``."""

    function_code: ClassVar[int] = FunctionCode.MASK_WRITE_REGISTER
    address: int
    and_mask: int
    or_mask: int

    def encode(self) -> bytes:
        """Return the request PDU."""
        return _HHH.pack(self.function_code, self.address, self.and_mask, self.or_mask)


@dataclass(frozen=True, slots=True)
class ReadWriteMultipleRegistersRequest:
    """0x17 Read/Write Multiple Registers: the write is performed before the read."""

    function_code: ClassVar[int] = FunctionCode.READ_WRITE_MULTIPLE_REGISTERS
    read_address: int
    read_count: int
    write_address: int
    write_values: tuple[int, ...]

    def encode(self) -> bytes:
        """Return the request PDU."""
        n = len(self.write_values)
        return struct.pack(
            f">BHHHHB{n}H",
            self.function_code,
            self.read_address,
            self.read_count,
            self.write_address,
            n,
            2 * n,
            *self.write_values,
        )


@dataclass(frozen=True, slots=True)
class ReadFifoQueueRequest:
    """0x18 Read FIFO Queue."""

    function_code: ClassVar[int] = FunctionCode.READ_FIFO_QUEUE
    address: int

    def encode(self) -> bytes:
        """Return the request PDU."""
        return struct.pack(">BH", self.function_code, self.address)


@dataclass(frozen=True, slots=True)
class ReadDeviceIdentificationRequest:
    """0x2B / MEI 0x0E Read Device Identification."""

    function_code: ClassVar[int] = FunctionCode.ENCAPSULATED_INTERFACE_TRANSPORT
    read_code: int
    object_id: int

    def encode(self) -> bytes:
        """Return the request PDU."""
        return bytes(
            (
                self.function_code,
                MEIType.READ_DEVICE_IDENTIFICATION,
                self.read_code,
                self.object_id,
            )
        )


@dataclass(frozen=True, slots=True, eq=False)
class CustomRequest:
    """A request for a user-defined function, decoded by the user's ``ModbusPDU`` subclass."""

    pdu: ModbusPDU

    @property
    def function_code(self) -> int:
        """The custom function code."""
        return self.pdu.function_code

    def encode(self) -> bytes:
        """Return the request PDU as the user's class encodes it."""
        return bytes((self.function_code,)) + self.pdu.encode()


Request = (
    ReadBitsRequest
    | ReadRegistersRequest
    | WriteSingleCoilRequest
    | WriteSingleRegisterRequest
    | ReadExceptionStatusRequest
    | DiagnosticRequest
    | GetCommEventCounterRequest
    | GetCommEventLogRequest
    | WriteMultipleCoilsRequest
    | WriteMultipleRegistersRequest
    | ReportServerIdRequest
    | ReadFileRecordRequest
    | WriteFileRecordRequest
    | MaskWriteRegisterRequest
    | ReadWriteMultipleRegistersRequest
    | ReadFifoQueueRequest
    | ReadDeviceIdentificationRequest
    | CustomRequest
)
"""Any decoded request."""
