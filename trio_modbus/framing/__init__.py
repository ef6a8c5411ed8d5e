"""Sans-IO framers: MBAP (TCP, TLS, UDP), RTU and ASCII; feed bytes in, take frames out.

Pure: no trio, no clock, no logging, no I/O. Time reaches the serial framers as an input
(``receive_silence()``); bad input comes out as counters, or for MBAP as
:class:`~trio_modbus.framing.base.FramingError` (a :class:`~trio_modbus.ModbusProtocolError`) on
which the connection is closed.
"""

from __future__ import annotations

from trio_modbus.framing.ascii import DEFAULT_ASCII_DELIMITER, ASCIIFramer
from trio_modbus.framing.base import (
    MAX_ASCII_FRAME,
    MAX_FRAMED_ASCII,
    MAX_FRAMED_PDU,
    MAX_FRAMED_RTU_ADU,
    MAX_PDU_SIZE,
    MAX_RTU_ADU,
    MAX_TCP_ADU,
    Frame,
    Framer,
    FramerCounters,
    FramingError,
    SerialFramer,
)
from trio_modbus.framing.crc import crc16, crc16_bytes, lrc
from trio_modbus.framing.mbap import MBAPFramer
from trio_modbus.framing.rtu import RTU_FAST_T15, RTU_FAST_T35, RTUFramer, RtuSizeRule, rtu_timing

__all__ = [
    "DEFAULT_ASCII_DELIMITER",
    "MAX_ASCII_FRAME",
    "MAX_FRAMED_ASCII",
    "MAX_FRAMED_PDU",
    "MAX_FRAMED_RTU_ADU",
    "MAX_PDU_SIZE",
    "MAX_RTU_ADU",
    "MAX_TCP_ADU",
    "RTU_FAST_T15",
    "RTU_FAST_T35",
    "ASCIIFramer",
    "Frame",
    "Framer",
    "FramerCounters",
    "FramingError",
    "MBAPFramer",
    "RTUFramer",
    "RtuSizeRule",
    "SerialFramer",
    "crc16",
    "crc16_bytes",
    "lrc",
    "rtu_timing",
]
