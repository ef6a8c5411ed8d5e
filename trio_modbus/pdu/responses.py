"""Response PDU encoders, one per response layout of the Application Protocol specification.

Each returns the complete response PDU (function code first). Values are taken as given: the
caller has validated quantities and addresses.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

from trio_modbus.pdu.bits import pack_bits
from trio_modbus.pdu.codes import FunctionCode, MEIType

__all__ = [
    "encode_comm_event_counter",
    "encode_comm_event_log",
    "encode_device_identification",
    "encode_diagnostic",
    "encode_exception_status",
    "encode_fifo_queue",
    "encode_read_bits",
    "encode_read_file_record",
    "encode_read_registers",
    "encode_report_server_id",
    "encode_write_multiple",
]

_FC_BC = struct.Struct(">BB")
_FC_ADDR_QTY = struct.Struct(">BHH")
_REGISTER_FORMATS = [struct.Struct(f">BB{n}H") for n in range(126)]


def encode_read_bits(function_code: int, bits: Sequence[object]) -> bytes:
    """0x01 / 0x02 reply: byte count, then the bits packed LSB first, pad bits zero."""
    packed = pack_bits(bits)
    return _FC_BC.pack(function_code, len(packed)) + packed


def encode_read_registers(function_code: int, values: Sequence[int]) -> bytes:
    """0x03 / 0x04 / 0x17 reply: byte count, then the registers big-endian."""
    n = len(values)
    fmt = _REGISTER_FORMATS[n] if n < len(_REGISTER_FORMATS) else struct.Struct(f">BB{n}H")
    return fmt.pack(function_code, 2 * n, *values)


def encode_write_multiple(function_code: int, address: int, count: int) -> bytes:
    """0x0F / 0x10 reply: start address and quantity written."""
    return _FC_ADDR_QTY.pack(function_code, address, count)


def encode_exception_status(status: int) -> bytes:
    """0x07 reply: one byte of exception status outputs."""
    return bytes((FunctionCode.READ_EXCEPTION_STATUS, status & 0xFF))


def encode_diagnostic(sub_function: int, data: bytes) -> bytes:
    """0x08 reply: sub-function and data."""
    return struct.pack(">BH", FunctionCode.DIAGNOSTICS, sub_function) + data


def encode_comm_event_counter(status: int, event_count: int) -> bytes:
    """0x0B reply: status word (0xFFFF busy, else 0) and event count."""
    return struct.pack(">BHH", FunctionCode.GET_COMM_EVENT_COUNTER, status, event_count)


def encode_comm_event_log(
    status: int, event_count: int, message_count: int, events: bytes
) -> bytes:
    """0x0C reply: byte count, status, event count, message count, events newest first."""
    return (
        struct.pack(
            ">BBHHH",
            FunctionCode.GET_COMM_EVENT_LOG,
            6 + len(events),
            status,
            event_count,
            message_count,
        )
        + events
    )


def encode_report_server_id(server_id: bytes, running: bool, extra: bytes = b"") -> bytes:
    """0x11 reply: byte count, server id, run indicator (0xFF on, 0x00 off), extra data."""
    body = server_id + (b"\xff" if running else b"\x00") + extra
    return _FC_BC.pack(FunctionCode.REPORT_SERVER_ID, len(body)) + body


def encode_read_file_record(records: Iterable[Sequence[int]]) -> bytes:
    """0x14 reply: data length, then per sub-request its length, reference type 6, records."""
    parts = [struct.pack(f">BB{len(r)}H", 1 + 2 * len(r), 6, *r) for r in records]
    body = b"".join(parts)
    return _FC_BC.pack(FunctionCode.READ_FILE_RECORD, len(body)) + body


def encode_fifo_queue(values: Sequence[int]) -> bytes:
    """0x18 reply: byte count (2 bytes, counting the FIFO count field), FIFO count, values."""
    n = len(values)
    return struct.pack(f">BHH{n}H", FunctionCode.READ_FIFO_QUEUE, 2 + 2 * n, n, *values)


def encode_device_identification(
    read_code: int,
    conformity_level: int,
    more_follows: bool,
    next_object_id: int,
    objects: Sequence[tuple[int, bytes]],
) -> bytes:
    """0x2B / 0x0E reply: header, then each object as id, length, value."""
    header = bytes(
        (
            FunctionCode.ENCAPSULATED_INTERFACE_TRANSPORT,
            MEIType.READ_DEVICE_IDENTIFICATION,
            read_code,
            conformity_level,
            0xFF if more_follows else 0x00,
            next_object_id,
            len(objects),
        )
    )
    return header + b"".join(bytes((oid, len(value))) + value for oid, value in objects)
