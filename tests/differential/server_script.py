"""The one server script both implementations run: the same datastore and identity.

``build("pymodbus")`` and ``build("trio_modbus")`` import the package by name and build the same
devices, so that identical request bytes must give identical answers. Nothing here depends on
which package it is: the script is a pymodbus server script with the package name as a
parameter, which is what trio_modbus's compatibility layer promises to run.

Layout (default ``zero_mode``: protocol address N is block address N + 1):

* unit 1: sequential blocks. Coils and discrete inputs: 2100 bits at block address 0
  (protocol 0..2098); holding and input registers: 300 registers at block address 0
  (protocol 0..298).
* unit 2: coils a *mutable* sparse block (writes create addresses), discrete inputs a
  sequential block at block address 100 (protocol 99..598), holding registers an *immutable*
  sparse block with holes, input registers a sparse block.
* every other unit id is missing (no key 0, so nothing falls back): exception 0B on TCP.
"""

from __future__ import annotations

import importlib
from typing import Any

UNITS = (1, 2)  # the unit ids the server has; every other id is missing

BITS_1 = 2100  # unit 1: coils and discrete inputs
REGS_1 = 300  # unit 1: holding and input registers
DI_2_START = 100  # unit 2: discrete inputs start at this block address
DI_2_SIZE = 500

IDENTITY = {
    "VendorName": "Differential Vendor",
    "ProductCode": "DIFF-PC",
    "MajorMinorRevision": "3.1.4",
    "VendorUrl": "https://example.invalid/modbus",
    "ProductName": "Differential test server",
    "ModelName": "Model D",
    "UserApplicationName": "trio_modbus vs pymodbus",
}
# Private (extended) objects: together with the regular ones they do not fit one response, so
# an extended stream read (code 03) needs two requests (MoreFollows / NextObjectId).
PRIVATE_OBJECTS = {
    0x80: "private object 0x80, " * 4,
    0x81: "P81" * 20,
    0x82: "private object 0x82",
}


def coil(n: int) -> bool:
    return (n * 7 + n // 5) % 3 == 0


def discrete(n: int) -> bool:
    return (n * 5 + n // 3) % 4 in (1, 2)


def holding(n: int) -> int:
    return (n * 40503 + 0x1234) & 0xFFFF


def input_reg(n: int) -> int:
    return (n * 25057 + 0xBEEF) & 0xFFFF


# Unit 2's sparse blocks: {block address: values}. Protocol address = block address - 1.
SPARSE_CO_2: dict[int, list[bool]] = {
    1: [coil(n) for n in range(40)],  # protocol 0..39
    100: [coil(n + 3) for n in range(24)],  # protocol 99..122
}
SPARSE_HR_2: dict[int, list[int]] = {
    1: [holding(n + 11) for n in range(20)],  # protocol 0..19
    31: [holding(n + 97) for n in range(10)],  # protocol 30..39
    1001: [holding(n + 5) for n in range(130)],  # protocol 1000..1129
}
SPARSE_IR_2: dict[int, list[int]] = {
    1: [input_reg(n + 3) for n in range(16)],  # protocol 0..15
    200: [input_reg(n) for n in range(126)],  # protocol 199..324
}


def _blocks(pkg: str) -> Any:
    return importlib.import_module(f"{pkg}.datastore")


def _devices(pkg: str) -> dict[int, Any]:
    ds = _blocks(pkg)
    seq, sparse = ds.ModbusSequentialDataBlock, ds.ModbusSparseDataBlock
    unit1 = ds.ModbusDeviceContext(
        co=seq(0, [coil(n) for n in range(BITS_1)]),
        di=seq(0, [discrete(n) for n in range(BITS_1)]),
        hr=seq(0, [holding(n) for n in range(REGS_1)]),
        ir=seq(0, [input_reg(n) for n in range(REGS_1)]),
    )
    unit2 = ds.ModbusDeviceContext(
        co=sparse({k: list(v) for k, v in SPARSE_CO_2.items()}, mutable=True),
        di=seq(DI_2_START, [discrete(n + 9) for n in range(DI_2_SIZE)]),
        hr=sparse({k: list(v) for k, v in SPARSE_HR_2.items()}, mutable=False),
        ir=sparse({k: list(v) for k, v in SPARSE_IR_2.items()}, mutable=False),
    )
    return {1: unit1, 2: unit2}


def build(pkg: str) -> tuple[Any, Any]:
    """Return ``(server context, identity)`` built with package ``pkg``'s own classes."""
    ds = _blocks(pkg)
    top = importlib.import_module(pkg)
    context = ds.ModbusServerContext(devices=_devices(pkg), single=False)
    identity = top.ModbusDeviceIdentification(info=dict(PRIVATE_OBJECTS), info_name=dict(IDENTITY))
    return context, identity


def reset(context: Any, pkg: str) -> None:
    """Put every block of ``context`` (built by ``build(pkg)``) back to its initial values.

    The blocks are kept (the running server holds them); only their values are replaced.
    """
    fresh = _devices(pkg)
    for unit, device in fresh.items():
        live = context[unit]
        for key, block in device.store.items():
            live.store[key].values = block.values
