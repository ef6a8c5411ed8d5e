"""Our keys, under the top-level ``trio_modbus`` key of a configuration (pymodbus ignores it).

Fault rules, the HTTP token, word orders per device, units, value generators, actions on
write and the scenario timeline. :func:`~trio_modbus.simulator.load_config` reads them with
the rest of the file; each error names its JSON path and the valid choices.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._errors import ConfigurationError
from ._checks import (
    _bool,
    _choices,
    _int,
    _is_int,
    _key,
    _list,
    _number,
    _object,
    _one_of,
    _str,
    _unknown_keys,
)

if TYPE_CHECKING:
    from ._config import DeviceConfig, WordOrder

__all__ = ["GENERATOR_KINDS", "GENERATOR_TYPES", "LISTENER_ACTIONS", "GeneratorConfig"]


@dataclasses.dataclass(frozen=True)
class _Extensions:
    faults: tuple[Mapping[str, Any], ...] = ()
    token: str | None = None
    word_orders: Mapping[str, WordOrder] = dataclasses.field(default_factory=dict)
    units: Mapping[int, str] = dataclasses.field(default_factory=dict)
    generators: Any = ()
    on_write: Any = ()
    scenario: Any = ()


_EXTENSION_KEYS = ("faults", "token", "devices", "units", "generators", "on_write", "scenario")
_DEVICE_EXTENSION_KEYS = ("word_order",)
_WORD_ORDERS = ("big", "little")


def _extensions(raw: Any, device_names: Sequence[str]) -> _Extensions:
    """Our keys, under the top-level ``trio_modbus`` key that pymodbus ignores."""
    from trio_modbus.testing import add_faults
    from trio_modbus.testing.faults import Faults

    path = "trio_modbus"
    extensions = _object(raw, path)
    _unknown_keys(extensions, _EXTENSION_KEYS, path)
    rules = tuple(
        _object(rule, f"{path}.faults[{n}]")
        for n, rule in enumerate(_list(extensions.get("faults", []), f"{path}.faults"))
    )
    try:
        add_faults(list(rules), Faults())  # checked now, armed when the simulator is built
    except ConfigurationError as exc:
        raise ConfigurationError(f"{path}.faults: {exc}") from None
    token = extensions.get("token")
    if token is not None:
        token = _str(token, f"{path}.token")
    word_orders: dict[str, WordOrder] = {}
    devices_path = _key(path, "devices")
    for name, entry in _object(extensions.get("devices", {}), devices_path).items():
        entry_path = _key(devices_path, str(name))
        if name not in device_names:
            raise ConfigurationError(
                f"{entry_path}: no device {name!r} in device_list; valid: {_choices(device_names)}"
            )
        entry = _object(entry, entry_path)
        _unknown_keys(entry, _DEVICE_EXTENSION_KEYS, entry_path)
        if "word_order" in entry:
            word_orders[name] = _one_of(
                entry["word_order"], _WORD_ORDERS, _key(entry_path, "word_order"), "a word order"
            )
    units: dict[int, str] = {}
    units_path = _key(path, "units")
    for key, name in _object(extensions.get("units", {}), units_path).items():
        entry_path = f"{units_path}[{json.dumps(key)}]"
        given: Any = int(key) if isinstance(key, str) and key.strip().isdigit() else key
        if not _is_int(given) or not 1 <= given <= 255:
            raise ConfigurationError(f"{entry_path}: {key!r} is not a unit id; valid: 1..255")
        unit = int(given)
        if unit in units:
            raise ConfigurationError(f"{entry_path}: unit {unit} is listed twice")
        if name not in device_names:
            raise ConfigurationError(
                f"{entry_path}: {name!r} is not in device_list; valid: {_choices(device_names)}"
            )
        units[unit] = name
    generators = extensions.get("generators", [])
    on_write = extensions.get("on_write", [])
    scenario = extensions.get("scenario", [])
    return _Extensions(rules, token, word_orders, units, generators, on_write, scenario)


def _device(devices: Mapping[str, DeviceConfig], name: Any, path: str) -> DeviceConfig:
    """The device ``name`` of an entry at ``path``; an error naming the valid ones."""
    if name not in devices:
        raise ConfigurationError(
            f"{path}.device: {name!r} is not in device_list; valid: {_choices(list(devices))}"
        )
    return devices[name]


# -- value generators ------------------------------------------------------------------------

GENERATOR_KINDS = ("ramp", "sine", "random", "toggle", "step")
GENERATOR_TYPES = ("bits", "uint16", "int16", "uint32", "int32", "float32", "float64")
_GENERATOR_KEYS = ("device", "address", "type", "kind", "period")
# Each kind's parameters: required ones, then optional ones with their defaults.
_GENERATOR_PARAMETERS: dict[str, tuple[tuple[str, ...], Mapping[str, Any]]] = {
    "ramp": (("stop",), {"start": 0, "step": 1}),
    "sine": (("amplitude", "period_s"), {"offset": 0}),
    "random": (("min", "max"), {"seed": None}),
    "toggle": ((), {"values": [0, 1]}),
    "step": (("values",), {}),
}


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """One entry of ``trio_modbus.generators``: a value that changes on the clock.

    Every ``period`` seconds (on Trio's clock, virtual in tests) the simulator stores the
    next value at ``address`` of each copy of ``device`` it serves, in the device's word
    order; the first value is stored when it starts.

    Attributes:
        device: The ``device_list`` entry.
        address: The first cell.
        type: The value's type, one of ``bits``, ``uint16``, ``int16``, ``uint32``,
            ``int32``, ``float32``, ``float64``.
        kind: ``ramp`` (``start``, ``stop``, ``step``: start, start + step, ... up to
            stop, then start again), ``sine`` (``offset + amplitude * sin(2 pi t /
            period_s)``, t the seconds since the start), ``random`` (uniform in
            ``min .. max``, from ``seed``), ``toggle`` (between the two ``values``, default
            0 and 1) or ``step`` (through ``values``, then again).
        period: Seconds between two values.
        parameters: The kind's parameters, defaults filled in.
        path: Where the entry is in the JSON.
    """

    device: str
    address: int
    type: str
    kind: str
    period: float
    parameters: Mapping[str, Any]
    path: str

    def value(self, tick: int, rng: random.Random) -> Any:
        """The value of tick ``tick`` (0 at the start, then one per period).

        Args:
            tick: The number of periods since the start.
            rng: The random generator (``random`` only).

        Returns:
            The value, an int for integer types.
        """
        p = self.parameters
        integer = self.type not in ("float32", "float64")
        if self.kind == "ramp":
            count = math.floor((p["stop"] - p["start"]) / p["step"]) + 1
            value = p["start"] + (tick % count) * p["step"]
        elif self.kind == "sine":
            phase = 2 * math.pi * tick * self.period / p["period_s"]
            value = p["offset"] + p["amplitude"] * math.sin(phase)
        elif self.kind == "random":
            if integer:
                return rng.randint(p["min"], p["max"])
            value = rng.uniform(p["min"], p["max"])
        else:  # toggle, step
            value = p["values"][tick % len(p["values"])]
        return round(value) if integer else float(value)


def _fits(kind: str, value: int | float, path: str) -> None:
    from ._datastore import encode_value

    try:
        encode_value(kind, value)
    except ValueError as exc:
        raise ConfigurationError(f"{path}: {exc}") from None


def _generators(raw: Any, devices: Mapping[str, DeviceConfig]) -> tuple[GeneratorConfig, ...]:
    path = "trio_modbus.generators"
    found: list[GeneratorConfig] = []
    for index, raw_entry in enumerate(_list(raw, path)):
        entry_path = f"{path}[{index}]"
        entry = _object(raw_entry, entry_path)
        for key in _GENERATOR_KEYS:
            if key not in entry:
                raise ConfigurationError(f"{entry_path}: missing {key!r}")
        kind = _one_of(entry["kind"], GENERATOR_KINDS, f"{entry_path}.kind", "a generator kind")
        required, optional = _GENERATOR_PARAMETERS[kind]
        _unknown_keys(entry, (*_GENERATOR_KEYS, *required, *optional), entry_path)
        for key in required:
            if key not in entry:
                raise ConfigurationError(f"{entry_path}: missing {key!r} (a {kind} needs it)")
        name = entry["device"]
        device = _device(devices, name, entry_path)
        value_type = _one_of(
            entry["type"], GENERATOR_TYPES, f"{entry_path}.type", "a generator type"
        )
        width = {"uint32": 2, "int32": 2, "float32": 2, "float64": 4}.get(value_type, 1)
        count = device.register_count
        address = _int(entry["address"], f"{entry_path}.address", 0, max(count - width, 0))
        if address + width > count:
            raise ConfigurationError(
                f"{entry_path}.address: a {value_type} takes {width} cells; the device has {count}"
            )
        period = _number(entry["period"], f"{entry_path}.period", False)
        if period <= 0:
            raise ConfigurationError(f"{entry_path}.period: expected seconds > 0, got {period!r}")
        integer = value_type not in ("float32", "float64")
        params = {**optional, **{k: entry[k] for k in (*required, *optional) if k in entry}}
        checked: dict[str, Any] = {}
        for key, value in params.items():
            key_path = f"{entry_path}.{key}"
            if key == "values":
                values = _list(value, key_path)
                if kind == "toggle" and len(values) != 2:
                    raise ConfigurationError(f"{key_path}: a toggle takes 2 values, got {value!r}")
                if not values:
                    raise ConfigurationError(f"{key_path}: give at least one value")
                checked[key] = [
                    _number(v, f"{key_path}[{n}]", integer) for n, v in enumerate(values)
                ]
                for n, v in enumerate(checked[key]):
                    _fits(value_type, v, f"{key_path}[{n}]")
            elif key == "seed":
                checked[key] = None if value is None else _int(value, key_path, 0, 2**63)
            elif key == "period_s":
                checked[key] = _number(value, key_path, False)
                if checked[key] <= 0:
                    raise ConfigurationError(f"{key_path}: expected seconds > 0, got {value!r}")
            else:
                checked[key] = _number(value, key_path, integer and kind != "sine")
        if kind == "ramp":
            start, stop, step = checked["start"], checked["stop"], checked["step"]
            if step == 0 or (stop - start) * step < 0:
                raise ConfigurationError(
                    f"{entry_path}.step: {step!r} never goes from {start!r} to {stop!r}"
                )
            _fits(value_type, start, f"{entry_path}.start")
            _fits(value_type, stop, f"{entry_path}.stop")
        elif kind == "sine":
            for sign in (-1, 1):
                extreme = checked["offset"] + sign * abs(checked["amplitude"])
                _fits(
                    value_type,
                    round(extreme) if integer else float(extreme),
                    f"{entry_path}.amplitude",
                )
        elif kind == "random":
            if checked["min"] > checked["max"]:
                raise ConfigurationError(f"{entry_path}.max: below min {checked['min']!r}")
            _fits(value_type, checked["min"], f"{entry_path}.min")
            _fits(value_type, checked["max"], f"{entry_path}.max")
        found.append(
            GeneratorConfig(name, address, value_type, kind, float(period), checked, entry_path)
        )
    return tuple(found)


# -- actions on write ------------------------------------------------------------------------

_ON_WRITE_KEYS = ("device", "address", "set", "fault", "listener")
LISTENER_ACTIONS = ("stop", "start")
_SET_KEYS = ("address", "value", "type")


def _set_values(raw: Any, path: str, device: DeviceConfig) -> list[dict[str, Any]]:
    """A list of typed values to store (``on_write[n].set``), checked against ``device``."""
    from ._datastore import VALUE_TYPES, encode_value

    found: list[dict[str, Any]] = []
    count = device.register_count
    for index, raw_entry in enumerate(_list(raw, path)):
        entry_path = f"{path}[{index}]"
        entry = _object(raw_entry, entry_path)
        _unknown_keys(entry, _SET_KEYS, entry_path)
        for key in ("address", "value"):
            if key not in entry:
                raise ConfigurationError(f"{entry_path}: missing {key!r}")
        value_type = _one_of(
            entry.get("type", "uint16"), VALUE_TYPES, f"{entry_path}.type", "a value type"
        )
        address = _int(entry["address"], f"{entry_path}.address", 0, max(count - 1, 0))
        value = entry["value"]
        if value_type == "string":
            value = _str(value, f"{entry_path}.value")
        elif value_type != "bits" or not isinstance(value, list | tuple):
            value = _number(value, f"{entry_path}.value", value_type not in _FLOATS)
        try:
            width = len(encode_value(value_type, value, device.word_order))
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"{entry_path}.value: {exc}") from None
        if address + width > count:
            raise ConfigurationError(
                f"{entry_path}.address: a {value_type} of {width} cells at {address} leaves"
                f" the device ({count} cells)"
            )
        found.append({"address": address, "value": value, "type": value_type})
    return found


_FLOATS = ("float32", "float64")


def _fault_rule(raw: Any, path: str) -> dict[str, Any] | None:
    """A fault rule table (or None), checked now; armed later, a copy each time."""
    from trio_modbus.testing import add_faults
    from trio_modbus.testing.faults import Faults

    if raw is None:
        return None
    fault = dict(_object(raw, path))
    try:
        add_faults([fault], Faults())
    except ConfigurationError as exc:
        raise ConfigurationError(f"{path}: {exc}") from None
    return fault


def _on_write(raw: Any, devices: Mapping[str, DeviceConfig]) -> tuple[Mapping[str, Any], ...]:
    """``trio_modbus.on_write``, checked: each entry with ``set`` and ``fault`` filled in."""
    path = "trio_modbus.on_write"
    found: list[Mapping[str, Any]] = []
    for index, raw_entry in enumerate(_list(raw, path)):
        entry_path = f"{path}[{index}]"
        entry = _object(raw_entry, entry_path)
        _unknown_keys(entry, _ON_WRITE_KEYS, entry_path)
        for key in ("device", "address"):
            if key not in entry:
                raise ConfigurationError(f"{entry_path}: missing {key!r}")
        if not any(key in entry for key in ("set", "fault", "listener")):
            raise ConfigurationError(f"{entry_path}: give 'set', 'fault' and/or 'listener'")
        name = entry["device"]
        device = _device(devices, name, entry_path)
        address = _int(
            entry["address"], f"{entry_path}.address", 0, max(device.register_count - 1, 0)
        )
        values = _set_values(entry.get("set", []), f"{entry_path}.set", device)
        fault = _fault_rule(entry.get("fault"), f"{entry_path}.fault")
        found.append(
            {
                "device": name,
                "address": address,
                "set": values,
                "fault": fault,
                "listener": _listener(entry, entry_path),
            }
        )
    return tuple(found)


def _listener(entry: Mapping[str, Any], path: str) -> str | None:
    """An entry's ``listener`` action ("stop" or "start"), or None."""
    if "listener" not in entry:
        return None
    action: str = _one_of(
        entry["listener"], LISTENER_ACTIONS, f"{path}.listener", "a listener action"
    )
    return action


# -- the scenario timeline -------------------------------------------------------------------

_SCENARIO_TRIGGERS = ("at", "after_requests")
_STEP_KEYS = (*_SCENARIO_TRIGGERS, "device", "set", "fault", "clear_faults", "listener")


def _scenario(raw: Any, devices: Mapping[str, DeviceConfig]) -> tuple[Mapping[str, Any], ...]:
    """``trio_modbus.scenario``, checked: each step with its trigger and its actions."""
    path = "trio_modbus.scenario"
    found: list[Mapping[str, Any]] = []
    for index, raw_step in enumerate(_list(raw, path)):
        step_path = f"{path}[{index}]"
        step = _object(raw_step, step_path)
        _unknown_keys(step, _STEP_KEYS, step_path)
        triggers = [key for key in _SCENARIO_TRIGGERS if key in step]
        if len(triggers) != 1:
            raise ConfigurationError(
                f"{step_path}: give one trigger; valid: {_choices(_SCENARIO_TRIGGERS)}"
            )
        checked: dict[str, Any] = {}
        if "at" in step:
            at = _number(step["at"], f"{step_path}.at", False)
            if at < 0:
                raise ConfigurationError(f"{step_path}.at: expected seconds >= 0, got {at!r}")
            checked["at"] = float(at)
        else:
            checked["after_requests"] = _int(
                step["after_requests"], f"{step_path}.after_requests", 1, 2**63
            )
        if not any(key in step for key in ("set", "fault", "clear_faults", "listener")):
            raise ConfigurationError(
                f"{step_path}: give 'set', 'fault', 'clear_faults' and/or 'listener'"
            )
        name = step.get("device")
        if name is None and "set" in step:
            if len(devices) != 1:
                raise ConfigurationError(
                    f"{step_path}: missing 'device' (the device the values are set on);"
                    f" valid: {_choices(list(devices))}"
                )
            name = next(iter(devices))
        if name is not None:
            _device(devices, name, step_path)
        checked["device"] = name
        checked["set"] = []
        if "set" in step and name is not None:
            checked["set"] = _set_values(step["set"], f"{step_path}.set", devices[name])
        checked["fault"] = _fault_rule(step.get("fault"), f"{step_path}.fault")
        checked["clear_faults"] = _bool(
            step.get("clear_faults", False), f"{step_path}.clear_faults"
        )
        checked["listener"] = _listener(step, step_path)
        found.append(checked)
    return tuple(found)
