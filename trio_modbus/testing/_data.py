"""A fake device's data: built from a compact seed, read and written by protocol address."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

from trio_modbus._errors import ConfigurationError
from trio_modbus.datastore import (
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSparseDataBlock,
)
from trio_modbus.pdu import ExceptionCode

__all__ = ["TABLES", "DataView", "Seed", "TableView", "UnitView", "build_context"]

# The four tables: seed key -> (device context key, the function code reading it).
TABLES: dict[str, tuple[str, int]] = {
    "coils": ("co", 1),
    "discrete_inputs": ("di", 2),
    "holding_registers": ("hr", 3),
    "input_registers": ("ir", 4),
}
ADDRESS_SPACE = 0x10000

Seed = Mapping[int, Mapping[str, Mapping[int, int | bool | Sequence[int | bool]]]]
"""``{unit: {table: {address: value or [values from address on]}}}``, zero-based addresses."""


def _seed_values(
    unit: int, table: str, seed: Mapping[int, int | bool | Sequence[int | bool]]
) -> dict[int, int]:
    """The seed of one table as ``{address: value}``, checked."""
    bits = TABLES[table][1] in (1, 2)
    limit = 1 if bits else 0xFFFF
    values: dict[int, int] = {}
    for start, given in seed.items():
        items = [given] if isinstance(given, int | bool) else list(given)
        for offset, value in enumerate(items):
            address = start + offset
            if not isinstance(address, int) or not 0 <= address < ADDRESS_SPACE:
                raise ConfigurationError(
                    f"units[{unit}][{table!r}]: address {address!r} is outside 0..65535"
                )
            if isinstance(value, bool):
                value = int(value)
            if not isinstance(value, int) or not 0 <= value <= limit:
                allowed = "a bool (or 0/1)" if bits else "an int 0..65535"
                raise ConfigurationError(
                    f"units[{unit}][{table!r}][{address}]: {value!r} is not {allowed}"
                )
            values[address] = value
    return values


def build_context(units: Seed, *, sparse: bool = False) -> ModbusServerContext:
    """Build the datastore of a fake device from a seed.

    Every unit gets the four tables. By default each covers the whole address space
    (0..65535, zero-based), zero where the seed says nothing, so a client can read anywhere;
    with ``sparse`` only the seeded addresses exist and any other is answered with exception
    02 ILLEGAL DATA ADDRESS, as on a real device with a fixed register map.

    Args:
        units: ``{unit: {table: {address: value or [values]}}}``; tables are ``coils``,
            ``discrete_inputs``, ``holding_registers`` and ``input_registers``.
        sparse: Only the seeded addresses exist.

    Returns:
        A server context holding one device per unit id (unit ids 1..247; 0 is broadcast).

    Raises:
        ConfigurationError: A unit id, table name, address or value out of range (named).
    """
    if not units:
        raise ConfigurationError("units: give at least one unit, e.g. {1: {}}")
    devices: dict[int, ModbusDeviceContext] = {}
    for unit, tables in units.items():
        if not isinstance(unit, int) or not 1 <= unit <= 247:
            raise ConfigurationError(f"units: unit id {unit!r} is not 1..247")
        unknown = set(tables) - set(TABLES)
        if unknown:
            raise ConfigurationError(
                f"units[{unit}]: unknown table {sorted(unknown)[0]!r}; "
                f"the tables are {', '.join(TABLES)}"
            )
        blocks: dict[str, Any] = {}
        for table, (key, _) in TABLES.items():
            values = _seed_values(unit, table, tables.get(table, {}))
            if sparse:  # a fixed register map: a write cannot create an address
                blocks[key] = ModbusSparseDataBlock(values, mutable=False)
            else:
                full = [0] * ADDRESS_SPACE
                for address, value in values.items():
                    full[address] = value
                blocks[key] = ModbusSequentialDataBlock(0, full)
        devices[unit] = ModbusDeviceContext(**blocks, zero_mode=True)
    return ModbusServerContext(devices, single=False)


class TableView:
    """One table of one unit, indexed by protocol address: ``view[3]``, ``view[0:4] = [...]``.

    Reads and writes go through the device context, exactly as a request's would, so a test
    sees what a client would read. An address the device does not hold raises ``KeyError``.
    """

    def __init__(self, device: ModbusDeviceContext, table: str) -> None:
        self._device = device
        self._table = table
        self._fc = TABLES[table][1]
        self._bits = self._fc in (1, 2)

    def __repr__(self) -> str:
        return f"<TableView {self._table}>"

    def _read(self, address: int, count: int) -> list[int]:
        if count <= 0:
            return []
        if not self._device.validate(self._fc, address, count):
            raise KeyError(f"{self._table}[{address}:{address + count}] is not held")
        values = self._device.getValues(self._fc, address, count)
        assert not isinstance(values, ExceptionCode)
        return [bool(v) for v in values] if self._bits else list(values)

    def _write(self, address: int, values: Sequence[int | bool]) -> None:
        if not self._device.validate(self._fc, address, len(values)):
            raise KeyError(f"{self._table}[{address}:{address + len(values)}] is not held")
        self._device.setValues(self._fc, address, [int(v) for v in values])

    @staticmethod
    def _span(index: slice) -> tuple[int, int]:
        if index.step not in (None, 1):
            raise ValueError("a table view takes contiguous slices only (no step)")
        start = 0 if index.start is None else index.start
        if index.stop is None:
            raise ValueError("a table view slice needs an end address")
        return start, index.stop - start

    @overload
    def __getitem__(self, index: int) -> int: ...
    @overload
    def __getitem__(self, index: slice) -> list[int]: ...
    def __getitem__(self, index: int | slice) -> int | list[int]:
        """The value at a protocol address, or the list of a slice's."""
        if isinstance(index, slice):
            return self._read(*self._span(index))
        return self._read(index, 1)[0]

    def __setitem__(self, index: int | slice, value: Any) -> None:
        """Set the value at an address, or the values of a slice (same length)."""
        if isinstance(index, slice):
            start, count = self._span(index)
            values = list(value)
            if len(values) != count:
                raise ValueError(f"{count} addresses, {len(values)} values")
            self._write(start, values)
        else:
            self._write(index, [value])


class UnitView:
    """The four tables of one unit, each a :class:`TableView`.

    Attributes:
        coils: Coils (function codes 01, 05, 0F).
        discrete_inputs: Discrete inputs (02).
        holding_registers: Holding registers (03, 06, 10, 16, 17).
        input_registers: Input registers (04).
        context: The unit's device context.
    """

    def __init__(self, device: ModbusDeviceContext) -> None:
        self.context = device
        self.coils = TableView(device, "coils")
        self.discrete_inputs = TableView(device, "discrete_inputs")
        self.holding_registers = TableView(device, "holding_registers")
        self.input_registers = TableView(device, "input_registers")


class DataView(Mapping[int, UnitView]):
    """A fake device's data by unit id: ``dev.datastore[1].holding_registers[0:3]``."""

    def __init__(self, context: ModbusServerContext) -> None:
        self._context = context

    def __getitem__(self, unit: int) -> UnitView:
        """The tables of ``unit``.

        Raises:
            KeyError: The device holds no such unit.
        """
        try:
            device = self._context[unit]
        except Exception as exc:
            raise KeyError(unit) from exc
        if not isinstance(device, ModbusDeviceContext):
            raise KeyError(unit)
        return UnitView(device)

    def __iter__(self) -> Iterator[int]:
        return iter(self._context.device_ids())

    def __len__(self) -> int:
        return len(list(self._context.device_ids()))
