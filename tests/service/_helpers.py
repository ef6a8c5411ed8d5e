"""Shared helpers for the executor tests: hex, datastores and a one-call request runner."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from trio_modbus.datastore import (
    DiagnosticState,
    ModbusDeviceContext,
    ModbusDeviceIdentification,
    ModbusSequentialDataBlock,
    ModbusServerContext,
)
from trio_modbus.service import DatastoreService, RequestContext

UNIT = 1


def h(text: str) -> bytes:
    """Bytes from spaced hex, the way the specification prints frames."""
    return bytes.fromhex(text)


def block(size: int = 100, values: Mapping[int, int] | None = None) -> ModbusSequentialDataBlock:
    """A block for a ``zero_mode=False`` device: protocol address N is block address N + 1.

    The block starts at block address 1, so ``values`` are keyed by *protocol* address + 1,
    which is the spec's 1-based numbering ("coil 20" is protocol address 19 = key 20).
    """
    data = [0] * size
    for number, value in (values or {}).items():
        data[number - 1] = value
    return ModbusSequentialDataBlock(1, data)


class SpyBlock(ModbusSequentialDataBlock):
    """A sequential block that records every read and write."""

    def __init__(self, address: int, values: Sequence[int]) -> None:
        super().__init__(address, values)
        self.calls: list[tuple[str, int, Any]] = []

    def getValues(self, address: int, count: int = 1) -> Any:
        self.calls.append(("get", address, count))
        return super().getValues(address, count)

    def setValues(self, address: int, values: Any) -> Any:
        self.calls.append(("set", address, values))
        return super().setValues(address, values)


class FailingBlock(ModbusSequentialDataBlock):
    """A block whose every access raises, like a datastore whose backend went away."""

    def getValues(self, address: int, count: int = 1) -> Any:
        raise RuntimeError("backend gone")

    def setValues(self, address: int, values: Any) -> Any:
        raise RuntimeError("backend gone")


def device(**kwargs: Any) -> ModbusDeviceContext:
    """A device with 100-entry blocks (protocol addresses 0..99) unless blocks are given."""
    for key in ("co", "di", "hr", "ir"):
        kwargs.setdefault(key, block())
    return ModbusDeviceContext(**kwargs)


def service(
    dev: ModbusDeviceContext | None = None,
    *,
    devices: Mapping[int, ModbusDeviceContext] | None = None,
    identity: ModbusDeviceIdentification | None = None,
    diagnostics: DiagnosticState | None = None,
    **kwargs: Any,
) -> DatastoreService:
    """A service for unit 1 (``dev``) or for the given ``devices`` mapping."""
    if devices is None:
        devices = {UNIT: dev if dev is not None else device()}
    context = ModbusServerContext(devices=devices, single=False)
    return DatastoreService(context, identity=identity, diagnostics=diagnostics, **kwargs)


async def ask(
    svc: DatastoreService,
    request: str | bytes,
    unit: int = UNIT,
    *,
    broadcast: bool = False,
    serial_line: bool = False,
) -> bytes | None:
    """Send one request PDU (hex or bytes) and return the reply PDU, or None."""
    pdu = h(request) if isinstance(request, str) else request
    ctx = RequestContext(unit_id=unit, broadcast=broadcast, serial_line=serial_line)
    return await svc.process(pdu, ctx)
