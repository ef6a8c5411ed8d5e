"""The simulator's configuration and state written back as pymodbus simulator JSON.

:func:`config_document` gives the effective configuration (the selected server, the devices
the units use, and our ``trio_modbus`` key, as loaded); :func:`export_document` gives each
unit's current state, every value listed explicitly in its device's word order, so that
loading it builds units with the same cells and the same generators.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._config import CellType, DeviceConfig, ServerConfig, SimulatorConfig
from ._datastore import _KIND, decode_value, encode_value
from ._extensions import GeneratorConfig

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


def _config_body(device: DeviceConfig) -> dict[str, Any]:
    """A ``device_list`` entry as loaded (its sections, ranges and repeats)."""
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
    return body


def _generator_entry(spec: GeneratorConfig, device: str) -> dict[str, Any]:
    """One ``trio_modbus.generators`` entry, for ``device`` (a ``device_list`` name)."""
    entry: dict[str, Any] = {
        "device": device,
        "address": spec.address,
        "type": spec.type,
        "kind": spec.kind,
        "period": spec.period,
    }
    for key, value in spec.parameters.items():
        if value is not None:  # a random's seed left to the simulator's
            entry[key] = list(value) if isinstance(value, list | tuple) else value
    return entry


def _extensions(
    faults: Sequence[Mapping[str, Any]],
    word_orders: Mapping[str, str],
    units: Mapping[int, str],
    generators: Sequence[dict[str, Any]],
    on_write: Sequence[Mapping[str, Any]] = (),
    scenario: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Our ``trio_modbus`` key (never the token), only the parts that say something."""
    extensions: dict[str, Any] = {}
    if faults:
        extensions["faults"] = [dict(rule) for rule in faults]
    orders = {name: order for name, order in word_orders.items() if order != "big"}
    if orders:
        extensions["devices"] = {name: {"word_order": order} for name, order in orders.items()}
    if units:
        extensions["units"] = {str(unit): name for unit, name in units.items()}
    if generators:
        extensions["generators"] = list(generators)
    if on_write:
        extensions["on_write"] = [_on_write_entry(entry) for entry in on_write]
    if scenario:
        extensions["scenario"] = [_scenario_step(step) for step in scenario]
    return extensions


def _scenario_step(step: Mapping[str, Any]) -> dict[str, Any]:
    """One ``trio_modbus.scenario`` step as loaded, only the parts that say something."""
    trigger = "at" if "at" in step else "after_requests"
    found: dict[str, Any] = {trigger: step[trigger]}
    if step["device"] is not None:
        found["device"] = step["device"]
    if step["clear_faults"]:
        found["clear_faults"] = True
    actions = _on_write_entry({**step, "address": None})
    found.update({key: actions[key] for key in ("set", "fault", "listener") if key in actions})
    return found


def _on_write_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One ``trio_modbus.on_write`` entry as loaded (defaults filled in, no empty parts)."""
    found: dict[str, Any] = {"device": entry["device"], "address": entry["address"]}
    if entry["set"]:
        found["set"] = [
            {**value, "value": list(v) if isinstance(v := value["value"], list | tuple) else v}
            for value in entry["set"]
        ]
    if entry["fault"] is not None:
        found["fault"] = dict(entry["fault"])
    if entry["listener"] is not None:
        found["listener"] = entry["listener"]
    return found


def _selected_first(units: Mapping[int, Any], unit: int | None) -> list[int]:
    """The unit ids, ``unit`` first (a simulator built with no names selects the first)."""
    ids = list(units)
    if unit is not None and unit in units:
        ids.remove(unit)
        ids.insert(0, unit)
    return ids


def config_document(
    server: ServerConfig,
    device: DeviceConfig,
    faults: Sequence[Mapping[str, Any]] = (),
    *,
    config: SimulatorConfig | None = None,
    unit: int | None = None,
) -> dict[str, Any]:
    """The effective configuration as pymodbus simulator JSON.

    The document has the selected server and, with ``trio_modbus.units``, every device a unit
    uses (else the selected device), and our ``trio_modbus`` key: the fault rules, the
    devices' word orders, the units, the generators, ``on_write`` entries and scenario steps
    of those devices; never the token (a
    secret). The selected unit comes first, so that loading the document selects it again.

    Args:
        server: The selected server (with ``modbus_port`` applied).
        device: The selected device.
        faults: The configuration's ``trio_modbus.faults`` rules.
        config: The whole configuration, for its units, devices and generators; None: only
            ``device``.
        unit: The selected unit id (with ``trio_modbus.units``), or None.

    Returns:
        A document :func:`~trio_modbus.simulator.load_config` (and pymodbus, when only
        pymodbus's types and keys are used) loads into the same configuration.
    """
    units: dict[int, str] = {}
    devices: dict[str, DeviceConfig] = {device.name: device}
    generators: Sequence[GeneratorConfig] = ()
    on_write: Sequence[Mapping[str, Any]] = ()
    scenario: Sequence[Mapping[str, Any]] = ()
    if config is not None:
        generators = config.generators
        on_write = config.on_write
        scenario = config.scenario
        if config.units:
            devices = {}
            for each in _selected_first(config.units, unit):
                name = config.units[each]
                units[each] = name
                devices.setdefault(name, config.devices[name])
    document: dict[str, Any] = {
        "server_list": {server.name: _server_entry(server)},
        "device_list": {name: _config_body(each) for name, each in devices.items()},
    }
    extensions = _extensions(
        faults,
        {name: each.word_order for name, each in devices.items()},
        units,
        [_generator_entry(g, g.device) for g in generators if g.device in devices],
        [entry for entry in on_write if entry["device"] in devices],
        [step for step in scenario if step["device"] is None or step["device"] in devices],
    )
    if extensions:
        document["trio_modbus"] = extensions
    return document


def _value_of(data: SimulatorData, address: int, kind: str, span: int) -> Any:
    """The value at ``address`` as JSON can carry it exactly, or None when it cannot.

    Multi-register numbers are read in the device's word order, the one a loaded file's
    values are stored in; strings are always first byte high.
    """
    words = [cell.value for cell in data.cells[address : address + span]]
    if kind in ("bits", "uint16"):
        return words[0]
    order = "big" if kind == "string" else data.word_order
    value = decode_value(kind, words, order)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        again = encode_value(kind, value, order, span if kind == "string" else None)
    except ValueError:
        return None
    return value if again == words else None


def _state_body(device: DeviceConfig, data: SimulatorData) -> dict[str, Any]:
    """A ``device_list`` entry with ``data``'s current cells (``device``'s setup)."""
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
    return body


def export_document(
    server: ServerConfig,
    device: DeviceConfig,
    data: SimulatorData,
    *,
    units: Mapping[int, SimulatorData] | None = None,
    unit: int | None = None,
    generators: Sequence[GeneratorConfig] = (),
    on_write: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The current state as pymodbus simulator JSON.

    Each device entry lists every defined cell with its current value, action, parameters
    and write permission; ``repeat`` is expanded and ``invalid`` is left to the undefined
    cells. Multi-register values are written in the device's word order (kept in
    ``trio_modbus.devices``). A value JSON cannot carry exactly (a NaN or infinite float, a
    string that is not UTF-8, a lone ``next`` cell a repeat left) is written as plain uint16
    registers: the same register values, another type.

    With units (``trio_modbus.units``), each unit's device is written from its own cells;
    two units sharing a device whose states differ get an entry each, the second named
    ``<device>@<unit>``. The generators and the ``on_write`` entries follow their devices
    (to each entry of a device written twice). The fault rules are not written (the state of
    a device, not its faults), nor the scenario (a timeline starts again when the document
    loads, so the steps already run would run again on the state they made; the config
    endpoint keeps it).

    Args:
        server: The selected server.
        device: The selected device (its sizes, modes and defaults are kept).
        data: The selected device's cells.
        units: Each served unit's data, with ``trio_modbus.units``; None: only ``data``.
        unit: The selected unit (written first, so that loading selects it again).
        generators: The configuration's generators.
        on_write: The configuration's ``on_write`` entries, as loaded.

    Returns:
        A document that loads into units with the same cells, generators and ``on_write``
        entries.
    """
    served: dict[int, str] = {}
    bodies: dict[str, dict[str, Any]] = {}
    orders: dict[str, str] = {}
    sources: dict[str, str] = {}  # entry name -> the device it was written from
    if units:
        taken = {each.device.name for each in units.values()}
        for each in _selected_first(units, unit):
            unit_data = units[each]
            name = unit_data.device.name
            body = _state_body(unit_data.device, unit_data)
            if name in bodies and bodies[name] != body:
                name = f"{name}@{each}"
                while name in taken or name in bodies:
                    name += "_"
            served[each] = name
            if name not in bodies:
                bodies[name] = body
                orders[name] = unit_data.word_order
                sources[name] = unit_data.device.name
    else:
        bodies[device.name] = _state_body(device, data)
        orders[device.name] = data.word_order
        sources[device.name] = device.name
    document: dict[str, Any] = {
        "server_list": {server.name: _server_entry(server)},
        "device_list": bodies,
    }
    extensions = _extensions(
        (),
        orders,
        served,
        [
            _generator_entry(g, name)
            for g in generators
            for name, source in sources.items()
            if source == g.device
        ],
        [
            {**entry, "device": name}
            for entry in on_write
            for name, source in sources.items()
            if source == entry["device"]
        ],
    )
    if extensions:
        document["trio_modbus"] = extensions
    return document
