"""Datastores: data blocks, device and server contexts, identification and diagnostic state.

The names mirror ``pymodbus.datastore`` (and pymodbus's ``ModbusDeviceIdentification``); see
each module for where the behaviour follows the Modbus specification instead of pymodbus.
"""

from __future__ import annotations

from .blocks import BaseModbusDataBlock, ModbusSequentialDataBlock, ModbusSparseDataBlock
from .context import (
    BlockWindow,
    ModbusBaseDeviceContext,
    ModbusDeviceContext,
    ModbusServerContext,
    NoSuchIdException,
)
from .diagnostics import DiagnosticState, ReceiveEvent, SendEvent
from .identity import ModbusDeviceIdentification

__all__ = [
    "BaseModbusDataBlock",
    "BlockWindow",
    "DiagnosticState",
    "ModbusBaseDeviceContext",
    "ModbusDeviceContext",
    "ModbusDeviceIdentification",
    "ModbusSequentialDataBlock",
    "ModbusServerContext",
    "ModbusSparseDataBlock",
    "NoSuchIdException",
    "ReceiveEvent",
    "SendEvent",
]
