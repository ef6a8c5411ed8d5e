"""The simulator's configuration and state written back as pymodbus simulator JSON.

:func:`config_document` gives the effective configuration (the selected server and device,
as loaded); :func:`export_document` gives the device's current state, every value listed
explicitly, so that loading it builds a device with the same cells.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._config import CellType, DeviceConfig, ServerConfig
from ._datastore import _KIND, decode_value, encode_value

if TYPE_CHECKING:
    from ._datastore import SimulatorData

__all__ = ["config_document", "export_document"]

_PYMODBUS_TYPES = ("bits", "uint16", "uint32", "float32", "string")
_SECTION = _KIND  # the section of a cell type, as the JSON names it


def _server_entry(server: ServerConfig) -> dict[str, Any]:
    entry = dict(server.options)
    entry["comm"] = server.comm
    entry["framer"] = str(server.framer.value)
    if server.port is not None:
        entry["port"] = server.port
    return entry


def _addr(first: int, last: int) -> int | list[int]:
    return first if first == last else [first, last]


def _ranges(addresses: Iterator[int]) -> list[list[int]]:
    result: list[list[int]] = []
    for address in addresses:
        if result and result[-1][1] == address - 1:
            result[-1][1] = address
        else:
            result.append([address, address])
    return result


def _setup(device: DeviceConfig, sections: set[str]) -> dict[str, Any]:
    kinds = [
        k for k in (*_PYMODBUS_TYPES, "int16", "float64") if k in _PYMODBUS_TYPES or k in sections
    ]
    return {
        "co size": device.co_size,
        "di size": device.di_size,
        "hr size": device.hr_size,
        "ir size": device.ir_size,
        "shared blocks": device.shared_blocks,
        "type exception": device.type_exception,
        "defaults": {
            "value": {k: device.default_values[k] for k in kinds},
            "action": {k: device.default_actions[k] for k in kinds},
        },
    }


def config_document(
    server: ServerConfig, device: DeviceConfig, faults: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """The effective configuration as pymodbus simulator JSON (one server, one device).

    The fault rules of our ``trio_modbus`` key are kept; its token is not (a secret).

    Args:
        server: The selected server (with ``modbus_port`` applied).
        device: The selected device.
        faults: The configuration's ``trio_modbus.faults`` rules.

    Returns:
        A document :func:`~trio_modbus.simulator.load_config` (and pymodbus, when only
        pymodbus's types are used) loads into the same configuration.
    """
    sections: dict[str, list[Any]] = {k: [] for k in (*_PYMODBUS_TYPES, "int16", "float64")}
    for entry in device.entries:
        spec: dict[str, Any] = {
            "addr": _addr(entry.start, entry.stop),
            "value": entry.value,
            "action": entry.action,
        }
        if entry.parameters:
            spec["parameters"] = dict(entry.parameters)
        sections[entry.type].append(spec)
    used = {k for k, v in sections.items() if v}
    body: dict[str, Any] = {
        "setup": _setup(device, used),
        "invalid": [_addr(a, b) for a, b in device.invalid],
        "write": [_addr(a, b) for a, b in device.write],
    }
    for kind, entries in sections.items():
        if kind in _PYMODBUS_TYPES or entries:
            body[kind] = entries
    body["repeat"] = [{"addr": list(r.source), "to": list(r.target)} for r in device.repeat]
    document: dict[str, Any] = {
        "server_list": {server.name: _server_entry(server)},
        "device_list": {device.name: body},
    }
    if faults:
        document["trio_modbus"] = {"faults": [dict(rule) for rule in faults]}
    return document


def _value_of(data: SimulatorData, address: int, kind: str, span: int) -> Any:
    """The value at ``address`` as JSON can carry it exactly, or None when it cannot."""
    words = [cell.value for cell in data.cells[address : address + span]]
    if kind in ("bits", "uint16"):
        return words[0]
    value = decode_value(kind, words)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        again = encode_value(kind, value, "big", span if kind == "string" else None)
    except ValueError:
        return None
    return value if again == words else None


def export_document(
    server: ServerConfig, device: DeviceConfig, data: SimulatorData
) -> dict[str, Any]:
    """The device's current state as pymodbus simulator JSON.

    Every defined cell is listed with its current value, action, parameters and write
    permission; ``repeat`` is expanded and ``invalid`` is left to the undefined cells. A value
    JSON cannot carry exactly (a NaN or infinite float, a string that is not UTF-8, a lone
    ``next`` cell a repeat left) is written as plain uint16 registers: the same register
    values, another type.

    Args:
        server: The selected server.
        device: The selected device (its sizes, modes and defaults are kept).
        data: The device's cells.

    Returns:
        A document that loads into a device with the same cells.
    """
    sections: dict[str, list[dict[str, Any]]] = {
        k: [] for k in (*_PYMODBUS_TYPES, "int16", "float64")
    }
    cells = data.cells
    address = 0
    count = len(cells)

    def add(kind: str, first: int, last: int, value: Any, action: Any, parameters: Any) -> None:
        entries = sections[kind]
        params = dict(parameters) if parameters else None
        width = last - first + 1
        if entries and kind != "string":
            previous = entries[-1]
            start, stop = (
                (previous["addr"], previous["addr"])
                if isinstance(previous["addr"], int)
                else previous["addr"]
            )
            if (
                stop == first - 1
                and previous["value"] == value
                and type(previous["value"]) is type(value)
                and previous["action"] == action
                and previous.get("parameters") == params
                and (stop - start + 1) % width == 0
            ):
                previous["addr"] = [start, last]
                return
        spec: dict[str, Any] = {"addr": _addr(first, last), "value": value, "action": action}
        if params:
            spec["parameters"] = params
        entries.append(spec)

    while address < count:
        cell = cells[address]
        kind = _SECTION.get(cell.type)
        if kind is None:  # invalid, or a next cell without its head
            if cell.type is CellType.NEXT:
                add("uint16", address, address, cell.value, None, None)
            address += 1
            continue
        span = data.value_span(address)
        value = _value_of(data, address, kind, span) if address + span <= count else None
        if value is None:
            for offset in range(span):
                target = address + offset
                if target < count:
                    add(
                        "uint16",
                        target,
                        target,
                        cells[target].value,
                        cell.action if offset == 0 else None,
                        cell.parameters if offset == 0 else None,
                    )
        else:
            add(kind, address, address + span - 1, value, cell.action, cell.parameters)
        address += span

    used = {k for k, v in sections.items() if v}
    body: dict[str, Any] = {
        "setup": _setup(device, used),
        "invalid": [],
        "write": [
            _addr(a, b)
            for a, b in _ranges(
                i for i, c in enumerate(cells) if c.writable and c.type is not CellType.INVALID
            )
        ],
    }
    for kind, entries in sections.items():
        if kind in _PYMODBUS_TYPES or entries:
            body[kind] = entries
    body["repeat"] = []
    return {
        "server_list": {server.name: _server_entry(server)},
        "device_list": {device.name: body},
    }
