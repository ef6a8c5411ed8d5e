"""The layouts and limits of the standard Modbus functions, stated once.

Source: Modbus Application Protocol V1.1b3, section 6 (each function's request and response
PDU), and its quantity limits.

Three readers: the codec (:mod:`trio_modbus.pdu.codec`) checks request lengths and quantities
with it, the RTU framer (:mod:`trio_modbus.framing.rtu`) finds frame ends with it (requests,
and the responses of other stations on a shared line), and the MBAP fast lane
(``trio_modbus.server._lane``) checks the requests it takes with it.

Every length here is a *PDU* length: function code + data. An MBAP length field adds the unit
id (1 byte); an RTU ADU adds the address and the CRC (3 bytes).

Pure: the standard library only (the purity tests of ``framing/`` and ``pdu/`` allow exactly
this module besides their own).
"""

from __future__ import annotations

import enum
import types
from collections.abc import Mapping
from typing import NamedTuple

__all__ = [
    "ADDRESS_SPACE",
    "DIAGNOSTIC_HEADER",
    "EXCEPTION_RESPONSE_LENGTH",
    "LAYOUTS",
    "MAX_FILE_RECORD_NUMBER",
    "MAX_PDU_SIZE",
    "MAX_READ_BITS",
    "MAX_READ_REGISTERS",
    "MAX_RW_WRITE_REGISTERS",
    "MAX_WRITE_COILS",
    "MAX_WRITE_REGISTERS",
    "MEI_HEADER",
    "MEI_READ_DEVICE_ID",
    "FunctionLayout",
    "Layout",
    "LayoutKind",
]

MAX_PDU_SIZE = 253  # function code + data, the same for every transport
ADDRESS_SPACE = 0x10000  # data addresses are 0..65535: a range may not run past 0xFFFF

# Quantity limits from the Application Protocol specification.
MAX_READ_BITS = 2000  # 0x01, 0x02: 0x0001..0x07D0
MAX_READ_REGISTERS = 125  # 0x03, 0x04, read half of 0x17: 0x0001..0x007D
MAX_WRITE_COILS = 1968  # 0x0F: 0x0001..0x07B0
MAX_WRITE_REGISTERS = 123  # 0x10: 0x0001..0x007B
MAX_RW_WRITE_REGISTERS = 121  # write half of 0x17: 0x0001..0x0079
MAX_FILE_RECORD_NUMBER = 0x270F  # 0x14, 0x15: records of a file are numbered 0..9999

# An exception response: function code | 0x80, exception code.
EXCEPTION_RESPONSE_LENGTH = 2
# 0x08: function code, sub-function (2 bytes); the shortest diagnostics PDU.
DIAGNOSTIC_HEADER = 3
# 0x2B: function code, MEI type; the shortest encapsulated-interface PDU.
MEI_HEADER = 2
# The MEI type of Read Device Identification (``MEIType.READ_DEVICE_IDENTIFICATION``), the
# only 0x2B transport with a known layout.
MEI_READ_DEVICE_ID = 0x0E


class LayoutKind(enum.IntEnum):
    """How the length of a PDU follows from its first bytes (see :class:`Layout`)."""

    FIXED = 0
    """``size`` is the PDU length."""
    COUNTED = 1
    """``size`` is the length of the header; its last byte counts the data bytes after it."""
    DIAGNOSTIC = 2
    """0x08: ``size`` is the PDU length, except for sub-function 0000 (Return Query Data),
    whose echo data may have any length (a PDU of at least :data:`DIAGNOSTIC_HEADER` bytes)."""
    DEVICE_ID = 3
    """0x2B request: with MEI type :data:`MEI_READ_DEVICE_ID`, ``size`` is the PDU length;
    another MEI type has any length (at least :data:`MEI_HEADER` bytes)."""
    DEVICE_ID_OBJECTS = 4
    """0x2B response: with MEI type :data:`MEI_READ_DEVICE_ID`, a header of ``size`` bytes
    whose last byte is the number of objects, then each object: id, length byte, value;
    another MEI type has any length (at least :data:`MEI_HEADER` bytes)."""


class Layout(NamedTuple):
    """The layout of one PDU: what decides its length.

    Attributes:
        kind: How to read ``size``.
        size: The PDU length (:attr:`LayoutKind.FIXED`), or the length of the fixed part up to
            and including the byte count (:attr:`LayoutKind.COUNTED`); see :class:`LayoutKind`.
    """

    kind: LayoutKind
    size: int


class FunctionLayout(NamedTuple):
    """The request and response layouts of one standard function, and its quantity limits.

    Attributes:
        request: The request PDU's layout.
        response: The normal response PDU's layout.
        max_quantity: The most items a request may name (bits or registers; for 0x17 its
            read half), or 0 when it names no quantity.
        max_write_quantity: For 0x17, the most registers its write half may carry; else 0.
    """

    request: Layout
    response: Layout
    max_quantity: int = 0
    max_write_quantity: int = 0


_FIXED = LayoutKind.FIXED
_COUNTED = LayoutKind.COUNTED

# Requests: function code, address (2), quantity or value (2).
_ADDRESS_VALUE = Layout(_FIXED, 5)
# Requests without data, responses with one: function code only.
_NO_DATA = Layout(_FIXED, 1)
# Responses: function code, byte count, data.
_BYTE_COUNT = Layout(_COUNTED, 2)

LAYOUTS: Mapping[int, FunctionLayout] = types.MappingProxyType(
    {
        # read coils, read discrete inputs: start, quantity -> byte count, packed bits
        0x01: FunctionLayout(_ADDRESS_VALUE, _BYTE_COUNT, MAX_READ_BITS),
        0x02: FunctionLayout(_ADDRESS_VALUE, _BYTE_COUNT, MAX_READ_BITS),
        # read holding registers, read input registers: start, quantity -> byte count, registers
        0x03: FunctionLayout(_ADDRESS_VALUE, _BYTE_COUNT, MAX_READ_REGISTERS),
        0x04: FunctionLayout(_ADDRESS_VALUE, _BYTE_COUNT, MAX_READ_REGISTERS),
        # write single coil, write single register: address, value -> echo
        0x05: FunctionLayout(_ADDRESS_VALUE, _ADDRESS_VALUE),
        0x06: FunctionLayout(_ADDRESS_VALUE, _ADDRESS_VALUE),
        # read exception status: no data -> status byte
        0x07: FunctionLayout(_NO_DATA, Layout(_FIXED, 2)),
        # diagnostics: sub-function, data (2 bytes, or any for 0000) -> echo
        0x08: FunctionLayout(Layout(LayoutKind.DIAGNOSTIC, 5), Layout(LayoutKind.DIAGNOSTIC, 5)),
        # get comm event counter: no data -> status, event count
        0x0B: FunctionLayout(_NO_DATA, Layout(_FIXED, 5)),
        # get comm event log: no data -> byte count, status, counts, events
        0x0C: FunctionLayout(_NO_DATA, _BYTE_COUNT),
        # write multiple coils: start, quantity, byte count, packed bits -> start, quantity
        0x0F: FunctionLayout(Layout(_COUNTED, 6), _ADDRESS_VALUE, MAX_WRITE_COILS),
        # write multiple registers: start, quantity, byte count, registers -> start, quantity
        0x10: FunctionLayout(Layout(_COUNTED, 6), _ADDRESS_VALUE, MAX_WRITE_REGISTERS),
        # report server id: no data -> byte count, id, run indicator, additional data
        0x11: FunctionLayout(_NO_DATA, _BYTE_COUNT),
        # read file record: byte count, sub-requests -> byte count, sub-responses
        0x14: FunctionLayout(_BYTE_COUNT, _BYTE_COUNT),
        # write file record: byte count, sub-requests -> echo
        0x15: FunctionLayout(_BYTE_COUNT, _BYTE_COUNT),
        # mask write register: address, and mask, or mask -> echo
        0x16: FunctionLayout(Layout(_FIXED, 7), Layout(_FIXED, 7)),
        # read/write multiple registers: read start, read quantity, write start, write quantity,
        # byte count, registers -> byte count, registers
        0x17: FunctionLayout(
            Layout(_COUNTED, 10), _BYTE_COUNT, MAX_READ_REGISTERS, MAX_RW_WRITE_REGISTERS
        ),
        # read FIFO queue: pointer address -> byte count (2 bytes, at most 64: its low byte
        # decides), FIFO count, registers
        0x18: FunctionLayout(Layout(_FIXED, 3), Layout(_COUNTED, 3)),
        # encapsulated interface transport: MEI type, and for 0x0E: read device id code,
        # object id -> MEI type, read device id code, conformity level, more follows, next
        # object id, number of objects, objects
        0x2B: FunctionLayout(
            Layout(LayoutKind.DEVICE_ID, 4), Layout(LayoutKind.DEVICE_ID_OBJECTS, 7)
        ),
    }
)
"""The standard functions' layouts and limits, by function code."""
