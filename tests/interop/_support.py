"""Shared datastore and expected values of the interop tests (no fixtures)."""

from __future__ import annotations

from trio_modbus import (
    ModbusDeviceContext,
    ModbusDeviceIdentification,
    ModbusSequentialDataBlock,
    ModbusServerContext,
)

UNIT = 1  # the one unit id the datastore serves (another id gets exception 0B / no reply)
SIZE = 2000  # entries per table: room for the largest reads (2000 bits, 125 registers)
TIMEOUT = 20  # seconds any one interop test may take before it fails instead of hanging
CLIENT_TIMEOUT = 3  # seconds a client waits for one reply

VENDOR = "InteropVendor"
PRODUCT_CODE = "IOP"
REVISION = "1.2"


def coil(n: int) -> bool:
    """Initial value of coil N."""
    return n % 3 == 0


def discrete_input(n: int) -> bool:
    """Initial value of discrete input N."""
    return n % 2 == 1


def holding(n: int) -> int:
    """Initial value of holding register N."""
    return 2000 + n


def input_register(n: int) -> int:
    """Initial value of input register N."""
    return 1000 + n


def make_context() -> ModbusServerContext:
    """One device at unit 1, zero-based, every value recognisable from its address."""
    device = ModbusDeviceContext(
        co=ModbusSequentialDataBlock(0, [coil(n) for n in range(SIZE)]),
        di=ModbusSequentialDataBlock(0, [discrete_input(n) for n in range(SIZE)]),
        hr=ModbusSequentialDataBlock(0, [holding(n) for n in range(SIZE)]),
        ir=ModbusSequentialDataBlock(0, [input_register(n) for n in range(SIZE)]),
        zero_mode=True,
    )
    return ModbusServerContext(devices={UNIT: device}, single=False)


def make_identity() -> ModbusDeviceIdentification:
    """The identity every interop server reports (0x2B/0x0E and 0x11)."""
    return ModbusDeviceIdentification(
        info_name={
            "VendorName": VENDOR,
            "ProductCode": PRODUCT_CODE,
            "MajorMinorRevision": REVISION,
        }
    )


def server_id() -> bytes:
    """What 0x11 (report server id) carries before its run indicator."""
    return f"{VENDOR}-{PRODUCT_CODE}-{REVISION}".encode()


def masked(value: int, and_mask: int, or_mask: int) -> int:
    """The spec's mask-write result: (current AND and_mask) OR (or_mask AND NOT and_mask)."""
    return (value & and_mask) | (or_mask & ~and_mask & 0xFFFF)
