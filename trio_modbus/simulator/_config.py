"""Reading pymodbus's simulator JSON: ``load_config`` and the configuration objects.

The format is pymodbus's (``server_list`` / ``device_list``), read unchanged: every key any
pymodbus 3.x release accepts is accepted here. Everything is checked before anything is
built, and every error names its JSON path and the valid choices.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import importlib.util
import json
import math
import os
import struct
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeAlias

from .._errors import ConfigurationError
from .._framer_type import FramerType
from ._checks import (
    _bool,
    _choices,
    _int,
    _key,
    _list,
    _object,
    _one_of,
    _str,
    _unknown_keys,
)
from ._extensions import (
    GeneratorConfig,
    _extensions,
    _generators,
    _on_write,
    _scenario,
)

__all__ = [
    "BUILTIN_ACTIONS",
    "CELL_TYPES",
    "CellType",
    "DeviceConfig",
    "RepeatEntry",
    "ServerConfig",
    "SimulatorConfig",
    "TypeEntry",
    "load_config",
    "load_custom_actions",
]

BUILTIN_ACTIONS = ("increment", "random", "reset", "timestamp", "uptime")
"""The actions every configuration may name, as pymodbus spells them."""

CELL_TYPES = ("bits", "uint16", "uint32", "float32", "string", "int16", "float64")
"""The device sections that define cells, in the order they are applied (pymodbus's five,
then ``int16`` and ``float64``)."""

_DEFAULT_FILE = Path(__file__).with_name("default.json")
_MAX_BLOCK = 65536  # cells per block size ("co size" ...): more is never addressable
_FLOAT32_MAX = struct.unpack(">f", b"\x7f\x7f\xff\xff")[0]


class CellType(enum.IntEnum):
    """What a cell (one 16-bit register of the simulated device) holds.

    The numbers of the first seven are pymodbus's ``CellType`` values, so a custom action
    written for pymodbus that compares ``cell.type`` with them keeps working.
    """

    INVALID = 0
    """Not defined, or listed in ``invalid``: every access answers 02."""
    BITS = 1
    """16 bits (coils / discrete inputs in shared mode), a plain register otherwise."""
    UINT16 = 2
    """An unsigned 16-bit integer."""
    UINT32 = 3
    """The first of two registers of an unsigned 32-bit integer (high word first)."""
    FLOAT32 = 4
    """The first of two registers of an IEEE 754 single (high word first)."""
    STRING = 5
    """The first register of a string (2 bytes per register, first byte high)."""
    NEXT = 6
    """A following register of a uint32, float32, float64 or string."""
    INT16 = 7
    """A signed 16-bit integer, stored as two's complement."""
    FLOAT64 = 8
    """The first of four registers of an IEEE 754 double (high word first)."""

    @property
    def label(self) -> str:
        """The lower-case name, as the JSON and pymodbus's web pages spell it."""
        return self.name.lower()


_TYPE_OF_SECTION = {
    "bits": CellType.BITS,
    "uint16": CellType.UINT16,
    "uint32": CellType.UINT32,
    "float32": CellType.FLOAT32,
    "string": CellType.STRING,
    "int16": CellType.INT16,
    "float64": CellType.FLOAT64,
}
# Registers per value; a string takes its whole range.
_WIDTH = {"bits": 1, "uint16": 1, "int16": 1, "uint32": 2, "float32": 2, "float64": 4}
_DEFAULT_VALUE: dict[str, Any] = {
    "bits": 0,
    "uint16": 0,
    "uint32": 0,
    "float32": 0.0,
    "string": " ",
    "int16": 0,
    "float64": 0.0,
}
# What each built-in action accepts as parameters, and the cell types it applies to.
_NUMERIC = frozenset({"bits", "uint16", "int16", "uint32", "float32", "float64"})
_ACTION_PARAMETERS: dict[str, frozenset[str]] = {
    "increment": frozenset({"minval", "maxval"}),
    "random": frozenset({"minval", "maxval"}),
    "reset": frozenset(),
    "timestamp": frozenset(),
    "uptime": frozenset(),
}
_ACTION_TYPES: dict[str, frozenset[str]] = {
    "increment": _NUMERIC,
    "random": _NUMERIC,
    "reset": frozenset(CELL_TYPES),
    "timestamp": frozenset(CELL_TYPES),
    "uptime": _NUMERIC,
}

CustomAction: TypeAlias = Callable[..., Any]
WordOrder: TypeAlias = Literal["big", "little"]


# -- servers ---------------------------------------------------------------------------------

_COMMS = ("tcp", "tls", "udp", "serial")
_FRAMERS: dict[str, tuple[str, ...]] = {
    "tcp": ("socket", "rtu", "ascii"),
    "udp": ("socket", "rtu", "ascii"),
    "tls": ("tls", "socket"),
    "serial": ("rtu", "ascii", "socket"),
}
_DEFAULT_FRAMER = {"tcp": "socket", "udp": "socket", "tls": "tls", "serial": "rtu"}
_DEFAULT_PORT = {"tcp": 502, "udp": 502, "tls": 802}
_IDENTITY_KEYS = (
    "VendorName",
    "ProductCode",
    "MajorMinorRevision",
    "VendorUrl",
    "ProductName",
    "ModelName",
    "UserApplicationName",
)
# Keys pymodbus 3.x passes on to its server classes, which trio_modbus has no use for:
# accepted (a file written for pymodbus loads) and kept in ServerConfig.options.
_ACCEPTED_ONLY = (
    "reconnect_delay",
    "retries",
    "allow_reuse_address",
    "allow_reuse_port",
    "defer_start",
    "backlog",
    "auto_open",
    "auto_close",
    "response_manipulator",
    "request_tracer",
)
_SERVER_KEYS = (
    "comm",
    "framer",
    "host",
    "port",
    "device_id",
    "identity",
    "ignore_missing_devices",
    "ignore_missing_slaves",
    "broadcast_enable",
    "certfile",
    "keyfile",
    "password",
    "baudrate",
    "bytesize",
    "parity",
    "stopbits",
    "timeout",
    "handle_local_echo",
    *_ACCEPTED_ONLY,
)


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """One entry of ``server_list``: how the simulated device is reached.

    Attributes:
        name: The entry's name in ``server_list``.
        comm: ``"tcp"``, ``"tls"``, ``"udp"`` or ``"serial"``.
        framer: The framing (``socket``, ``tls``, ``rtu``, ``ascii``).
        host: The address to bind (network servers); ``"127.0.0.1"`` when not given.
        port: The TCP/UDP port, or the serial device (a path or ``socket://host:port``).
        device_id: The one unit id served, or None to answer every unit id.
        identity: Device identification objects by pymodbus name (``VendorName`` ...).
        ignore_missing_devices: Give no reply, instead of exception 0B, to another unit id
            (``ignore_missing_slaves`` is read as an alias).
        broadcast_enable: Execute unit 0 as a broadcast (serial lines).
        certfile: TLS certificate chain (PEM).
        keyfile: TLS private key (PEM).
        password: Password of the TLS key.
        baudrate: Serial speed.
        bytesize: Serial data bits.
        parity: Serial parity, ``"N"``, ``"E"`` or ``"O"``.
        stopbits: Serial stop bits.
        timeout: pymodbus's serial timeout in seconds (kept; trio_modbus times frames from
            the baud rate).
        handle_local_echo: Drop the echo of our own transmission (serial).
        options: Every key of the entry as given, the ones modelled above included.
    """

    name: str
    comm: Literal["tcp", "tls", "udp", "serial"]
    framer: FramerType
    host: str | None = None
    port: int | str | None = None
    device_id: int | None = None
    identity: Mapping[str, str] | None = None
    ignore_missing_devices: bool = False
    broadcast_enable: bool = False
    certfile: str | None = None
    keyfile: str | None = None
    password: str | None = None
    baudrate: int | None = None
    bytesize: int | None = None
    parity: str | None = None
    stopbits: float | None = None
    timeout: float | None = None
    handle_local_echo: bool = False
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def make_identity(self) -> Any:
        """Build the device identification to serve (FC 2B/0E and 11).

        Returns:
            A :class:`~trio_modbus.datastore.identity.ModbusDeviceIdentification`, empty when
            the entry has no ``identity``.
        """
        from ..datastore.identity import ModbusDeviceIdentification

        return ModbusDeviceIdentification(info_name=dict(self.identity or {}))

    def server_options(self) -> dict[str, Any]:
        """The entry as keyword arguments of the matching ``serve_*`` function.

        ``serve_tcp``, ``serve_tls`` and ``serve_udp`` get ``host`` and ``port``;
        ``serve_serial`` gets its line settings (its ``port`` is the ``port`` attribute, passed
        apart). ``identity``, ``ignore_missing_devices``, ``broadcast`` and ``framer`` go to
        all of them; keys trio_modbus has no use for (``timeout``, ``reconnect_delay`` ...)
        are left out.

        Returns:
            A new dict of options.
        """
        options: dict[str, Any] = {
            "framer": self.framer,
            "identity": self.make_identity(),
            "ignore_missing_devices": self.ignore_missing_devices,
            "broadcast": self.broadcast_enable,
        }
        if self.comm == "serial":
            for key in ("baudrate", "bytesize", "parity", "stopbits"):
                if (value := getattr(self, key)) is not None:
                    options[key] = value
            options["handle_local_echo"] = self.handle_local_echo
        else:
            options["host"] = self.host
            options["port"] = self.port
        if self.comm == "tls":
            del options["framer"]
            for key in ("certfile", "keyfile", "password"):
                if (value := getattr(self, key)) is not None:
                    options[key] = value
        return options


def _server(name: str, raw: Any, path: str) -> ServerConfig:
    entry = _object(raw, path)
    _unknown_keys(entry, _SERVER_KEYS, path)
    comm = _one_of(entry.get("comm", "tcp"), _COMMS, _key(path, "comm"), "a transport")
    framer_name = entry.get("framer", _DEFAULT_FRAMER[comm])
    if isinstance(framer_name, str):
        framer_name = framer_name.lower()
    if framer_name not in _FRAMERS[comm]:
        raise ConfigurationError(
            f"{_key(path, 'framer')}: {framer_name!r} is not a framer for comm {comm!r};"
            f" valid: {_choices(_FRAMERS[comm])}"
        )
    fields: dict[str, Any] = {"name": name, "comm": comm, "framer": FramerType(framer_name)}
    if comm == "serial":
        if "port" not in entry:
            raise ConfigurationError(f"{path}: a serial server needs 'port' (the device)")
        fields["port"] = _str(entry["port"], _key(path, "port"))
        if "host" in entry:
            fields["host"] = _str(entry["host"], _key(path, "host"))
    else:
        fields["host"] = _str(entry.get("host", "127.0.0.1"), _key(path, "host"))
        fields["port"] = _int(entry.get("port", _DEFAULT_PORT[comm]), _key(path, "port"), 0, 65535)
    if "device_id" in entry:
        raw_id = entry["device_id"]
        if isinstance(raw_id, str) and raw_id.strip().isdigit():
            raw_id = int(raw_id)  # pymodbus reads it with int()
        fields["device_id"] = _int(raw_id, _key(path, "device_id"), 0, 255)
    if "identity" in entry:
        identity = _object(entry["identity"], _key(path, "identity"))
        _unknown_keys(identity, _IDENTITY_KEYS, _key(path, "identity"))
        fields["identity"] = {
            k: _str(v, _key(_key(path, "identity"), k)) for k, v in identity.items()
        }
    missing = [k for k in ("ignore_missing_devices", "ignore_missing_slaves") if k in entry]
    if len(missing) == 2 and bool(entry[missing[0]]) != bool(entry[missing[1]]):
        raise ConfigurationError(
            f"{path}: ignore_missing_devices and its alias ignore_missing_slaves disagree"
        )
    for key in missing:
        fields["ignore_missing_devices"] = _bool(entry[key], _key(path, key))
    for key in ("broadcast_enable", "handle_local_echo"):
        if key in entry:
            fields[key] = _bool(entry[key], _key(path, key))
    for key in ("certfile", "keyfile", "password"):
        if key in entry and entry[key] is not None:
            fields[key] = _str(entry[key], _key(path, key))
    if "baudrate" in entry:
        fields["baudrate"] = _int(entry["baudrate"], _key(path, "baudrate"), 1, 10**8)
    if "bytesize" in entry:
        fields["bytesize"] = _int(entry["bytesize"], _key(path, "bytesize"), 5, 8)
    if "parity" in entry:
        parity = entry["parity"]
        if parity not in ("N", "E", "O"):
            raise ConfigurationError(
                f"{_key(path, 'parity')}: {parity!r} is not a parity; valid: 'N', 'E', 'O'"
            )
        fields["parity"] = parity
    if "stopbits" in entry:
        stopbits = entry["stopbits"]
        if stopbits not in (1, 1.5, 2):
            raise ConfigurationError(
                f"{_key(path, 'stopbits')}: {stopbits!r} is not a stop bit count; valid: 1, 1.5, 2"
            )
        fields["stopbits"] = stopbits
    if "timeout" in entry and entry["timeout"] is not None:
        timeout = entry["timeout"]
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
            raise ConfigurationError(
                f"{_key(path, 'timeout')}: expected a number of seconds, got {timeout!r}"
            )
        fields["timeout"] = float(timeout)
    fields["options"] = dict(entry)
    return ServerConfig(**fields)


# -- devices ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TypeEntry:
    """One entry of a type section (``uint16``, ``string`` ...) of a device.

    Attributes:
        type: The section, one of :data:`CELL_TYPES`.
        start: The first cell address.
        stop: The last cell address (inclusive, as in the JSON).
        value: The initial value of each value in the range.
        action: The action run when the value is read, or None.
        parameters: The action's parameters (``parameters``, or ``kwargs`` before pymodbus
            3.7).
        path: Where the entry is in the JSON, for messages.
    """

    type: str
    start: int
    stop: int
    value: int | float | str
    action: str | None
    parameters: Mapping[str, Any]
    path: str


@dataclasses.dataclass(frozen=True)
class RepeatEntry:
    """One entry of ``repeat``: copy cells ``addr`` over ``to``, cycling through them.

    Attributes:
        source: ``(first, last)`` cells copied.
        target: ``(first, last)`` cells written.
        path: Where the entry is in the JSON.
    """

    source: tuple[int, int]
    target: tuple[int, int]
    path: str


@dataclasses.dataclass(frozen=True)
class _CellInit:
    """The initial state of one cell, as the layout computes it."""

    type: CellType
    value: int = 0
    writable: bool = False
    action: str | None = None
    parameters: Mapping[str, Any] | None = None


_INVALID_CELL = _CellInit(CellType.INVALID)


@dataclasses.dataclass(frozen=True)
class DeviceConfig:
    """One entry of ``device_list``: the registers of the simulated device.

    Cell addresses are indices into one array of 16-bit cells. With ``shared_blocks`` the
    four tables are that one array (``register_count`` is the largest size); without, the
    array is coils, then discrete inputs, input registers and holding registers, each block
    as many cells as its size, and a table's protocol address N is cell ``offset + N``
    (registers) or bit ``N % 16`` of cell ``offset + N // 16`` (coils and discrete inputs),
    as in pymodbus.

    Attributes:
        name: The entry's name in ``device_list``.
        co_size: Cells of the coils block (``"co size"``).
        di_size: Cells of the discrete inputs block (``"di size"``).
        hr_size: Cells of the holding registers block (``"hr size"``).
        ir_size: Cells of the input registers block (``"ir size"``).
        shared_blocks: One array for all four tables (``"shared blocks"``).
        type_exception: Refuse (02) an access that starts or ends inside a multi-register
            value (``"type exception"``).
        default_values: The default value of each type (``defaults.value``).
        default_actions: The default action of each type (``defaults.action``).
        invalid: ``(first, last)`` ranges of cells that answer 02.
        write: ``(first, last)`` ranges of writable cells (all others are read-only).
        entries: The type entries, in the order they are applied.
        repeat: The repeat entries, in order.
        word_order: The word order of its multi-register values (uint32, float32,
            float64): ``"big"``, high word first (pymodbus's), or ``"little"``
            (``trio_modbus.devices.<name>.word_order``). The values the file gives are stored
            in it, and it is :meth:`~trio_modbus.simulator.SimulatorData.get`'s and
            :meth:`~trio_modbus.simulator.SimulatorData.set`'s default.
    """

    name: str
    co_size: int
    di_size: int
    hr_size: int
    ir_size: int
    shared_blocks: bool
    type_exception: bool
    default_values: Mapping[str, Any]
    default_actions: Mapping[str, str | None]
    invalid: tuple[tuple[int, int], ...]
    write: tuple[tuple[int, int], ...]
    entries: tuple[TypeEntry, ...]
    repeat: tuple[RepeatEntry, ...]
    word_order: Literal["big", "little"] = "big"
    _cells: tuple[_CellInit, ...] = dataclasses.field(repr=False, compare=False, default=())

    @property
    def register_count(self) -> int:
        """The number of cells of the device."""
        return len(self._cells)

    @property
    def offsets(self) -> Mapping[str, int]:
        """The first cell of each table, as ``{"co": ..., "di": ..., "ir": ..., "hr": ...}``."""
        if self.shared_blocks:
            return {"co": 0, "di": 0, "ir": 0, "hr": 0}
        return {
            "co": 0,
            "di": self.co_size,
            "ir": self.co_size + self.di_size,
            "hr": self.co_size + self.di_size + self.ir_size,
        }

    @property
    def sizes(self) -> Mapping[str, int]:
        """The number of cells of each table (all ``register_count`` when shared)."""
        if self.shared_blocks:
            count = self.register_count
            return {"co": count, "di": count, "ir": count, "hr": count}
        return {"co": self.co_size, "di": self.di_size, "ir": self.ir_size, "hr": self.hr_size}


_DEVICE_KEYS = ("setup", "invalid", "write", *CELL_TYPES, "repeat")
_SETUP_KEYS = (
    "co size",
    "di size",
    "hr size",
    "ir size",
    "shared blocks",
    "type exception",
    "defaults",
)
_ENTRY_KEYS = ("addr", "value", "action", "parameters", "kwargs")


def _range(raw: Any, path: str, count: int) -> tuple[int, int]:
    """An address or ``[first, last]``, inside ``0 .. count - 1``."""
    if isinstance(raw, list | tuple):
        if len(raw) != 2:
            raise ConfigurationError(f"{path}: expected an address or [first, last], got {raw!r}")
        first = _int(raw[0], f"{path}[0]", 0, max(count - 1, 0))
        last = _int(raw[1], f"{path}[1]", 0, max(count - 1, 0))
    else:
        first = last = _int(raw, path, 0, max(count - 1, 0))
    if count == 0:
        raise ConfigurationError(f"{path}: the device has no cells (all block sizes are 0)")
    if last < first:
        raise ConfigurationError(f"{path}: last address {last} is before first {first}")
    return first, last


def _check_value(section: str, value: Any, path: str) -> int | float | str:
    if section == "string":
        return _str(value, path)
    if section in ("float32", "float64"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigurationError(f"{path}: expected a number, got {value!r}")
        if section == "float32" and math.isfinite(value) and abs(value) > _FLOAT32_MAX:
            raise ConfigurationError(f"{path}: {value!r} does not fit a float32")
        return float(value)
    low, high = {
        "bits": (0, 0xFFFF),
        "uint16": (0, 0xFFFF),
        "int16": (-0x8000, 0x7FFF),
        "uint32": (0, 0xFFFFFFFF),
    }[section]
    if isinstance(value, bool):
        value = int(value)
    return _int(value, path, low, high)


def _type_range(section: str) -> tuple[float, float]:
    return {
        "bits": (0, 0xFFFF),
        "uint16": (0, 0xFFFF),
        "int16": (-0x8000, 0x7FFF),
        "uint32": (0, 0xFFFFFFFF),
        "float32": (-_FLOAT32_MAX, _FLOAT32_MAX),
        "float64": (-sys.float_info.max, sys.float_info.max),
    }[section]


def _check_action(
    section: str,
    action: Any,
    parameters: Any,
    path: str,
    actions: Mapping[str, CustomAction],
    action_path: str | None = None,
) -> tuple[str | None, Mapping[str, Any]]:
    """Check an action name and its parameters for a value of type ``section``."""
    if action is None:
        return None, {}
    action_path = action_path or f"{path}.action"
    valid = sorted(set(BUILTIN_ACTIONS) | set(actions))
    if not isinstance(action, str) or action not in valid:
        raise ConfigurationError(
            f"{action_path}: {action!r} is not an action; valid: null, {_choices(valid)}"
        )
    params = dict(_object(parameters, f"{path}.parameters")) if parameters is not None else {}
    if action in actions:  # a custom action (which may replace a built-in, as in pymodbus)
        from ._actions import bind_custom

        try:
            bind_custom(actions[action], params)
        except TypeError as exc:
            raise ConfigurationError(
                f"{path}.parameters: custom action {action!r} does not take them: {exc}"
            ) from None
        return action, params
    if section not in _ACTION_TYPES[action]:
        raise ConfigurationError(
            f"{action_path}: {action!r} does not apply to {section}; it applies to"
            f" {_choices(sorted(_ACTION_TYPES[action]))}"
        )
    allowed = sorted(_ACTION_PARAMETERS[action])
    for key, value in params.items():
        if key not in allowed:
            raise ConfigurationError(
                f"{path}.parameters.{key}: {action!r} takes no such parameter;"
                f" valid: {_choices(allowed) or 'none'}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigurationError(f"{path}.parameters.{key}: expected a number, got {value!r}")
    if action in ("increment", "random"):
        low, high = _type_range(section)
        minval = params.get("minval", 1 if action == "random" else None)
        maxval = params.get("maxval", 65536 if action == "random" else None)
        lo = low if minval is None else max(minval, low)
        hi = high if maxval is None else min(maxval, high)
        if lo > hi:
            raise ConfigurationError(
                f"{path}.parameters: minval..maxval leaves no {section} value"
                f" (the type holds {low}..{high})"
            )
    return action, params


def _encode_value(
    section: str, value: int | float | str, registers: int, word_order: WordOrder = "big"
) -> list[int]:
    """The raw registers of one value of type ``section`` (``registers`` for a string)."""
    from ._datastore import encode_value

    return encode_value(section, value, word_order, registers)


def _device(
    name: str,
    raw: Any,
    path: str,
    actions: Mapping[str, CustomAction],
    word_order: WordOrder = "big",
) -> DeviceConfig:
    device = _object(raw, path)
    _unknown_keys(device, _DEVICE_KEYS, path)
    if "setup" not in device:
        raise ConfigurationError(f"{path}: missing section 'setup'")
    setup_path = _key(path, "setup")
    setup = _object(device["setup"], setup_path)
    _unknown_keys(setup, _SETUP_KEYS, setup_path)
    sizes = {
        key: _int(setup.get(key, 0), _key(setup_path, key), 0, _MAX_BLOCK)
        for key in ("co size", "di size", "hr size", "ir size")
    }
    shared = _bool(setup.get("shared blocks", True), _key(setup_path, "shared blocks"))
    type_exception = _bool(setup.get("type exception", False), _key(setup_path, "type exception"))
    defaults_path = _key(setup_path, "defaults")
    defaults = _object(setup.get("defaults", {}), defaults_path)
    _unknown_keys(defaults, ("value", "action"), defaults_path)
    value_path = _key(defaults_path, "value")
    action_path = _key(defaults_path, "action")
    default_values_raw = _object(defaults.get("value", {}), value_path)
    default_actions_raw = _object(defaults.get("action", {}), action_path)
    _unknown_keys(default_values_raw, CELL_TYPES, value_path)
    _unknown_keys(default_actions_raw, CELL_TYPES, action_path)
    default_values: dict[str, Any] = {}
    default_actions: dict[str, str | None] = {}
    for section in CELL_TYPES:
        raw_value = default_values_raw.get(section, _DEFAULT_VALUE[section])
        default_values[section] = _check_value(section, raw_value, _key(value_path, section))
        action, _ = _check_action(
            section,
            default_actions_raw.get(section),
            None,
            value_path,
            actions,
            action_path=_key(action_path, section),
        )
        default_actions[section] = action

    count = max(sizes.values()) if shared else sum(sizes.values())
    cells: list[_CellInit] = [_INVALID_CELL] * count
    owner: list[str | None] = [None] * count

    # The type sections, in pymodbus's order.
    entries: list[TypeEntry] = []
    for section in CELL_TYPES:
        section_path = _key(path, section)
        for index, raw_entry in enumerate(_list(device.get(section, []), section_path)):
            entry_path = f"{section_path}[{index}]"
            if isinstance(raw_entry, Mapping):
                _unknown_keys(raw_entry, _ENTRY_KEYS, entry_path)
                if "addr" not in raw_entry:
                    raise ConfigurationError(f"{entry_path}: missing 'addr'")
                spec = raw_entry
            else:
                spec = {"addr": raw_entry}
            first, last = _range(spec["addr"], f"{entry_path}.addr", count)
            value = _check_value(
                section, spec.get("value", default_values[section]), f"{entry_path}.value"
            )
            if "parameters" in spec and "kwargs" in spec:
                raise ConfigurationError(
                    f"{entry_path}: give 'parameters' or its older name 'kwargs', not both"
                )
            parameters = spec.get("parameters", spec.get("kwargs"))
            action, params = _check_action(
                section,
                spec.get("action", default_actions[section]),
                parameters,
                entry_path,
                actions,
            )
            size = last - first + 1
            width = _WIDTH.get(section, size)
            if size % width:
                raise ConfigurationError(
                    f"{entry_path}.addr: {section} takes {width} registers per value;"
                    f" [{first}, {last}] is {size}"
                )
            if section == "string":
                try:
                    words = _encode_value(section, value, size)
                except ValueError as exc:
                    raise ConfigurationError(f"{entry_path}.value: {exc}") from None
            else:
                words = _encode_value(section, value, width, word_order)
            for address in range(first, last + 1):
                if owner[address] is not None:
                    raise ConfigurationError(
                        f"{entry_path}.addr: cell {address} is already defined by {owner[address]}"
                    )
            kind = _TYPE_OF_SECTION[section]
            for head in range(first, last + 1, width):
                cells[head] = _CellInit(kind, words[0], False, action, params or None)
                for offset in range(1, width):
                    cells[head + offset] = _CellInit(CellType.NEXT, words[offset])
                for address in range(head, head + width):
                    owner[address] = entry_path
            entries.append(TypeEntry(section, first, last, value, action, params, entry_path))

    # "write": only defined cells may be writable (checked before "invalid", as pymodbus).
    write: list[tuple[int, int]] = []
    write_path = _key(path, "write")
    for index, raw_range in enumerate(_list(device.get("write", []), write_path)):
        first, last = _range(raw_range, f"{write_path}[{index}]", count)
        for address in range(first, last + 1):
            if cells[address].type is CellType.INVALID:
                raise ConfigurationError(
                    f"{write_path}[{index}]: cell {address} is not defined by any type section"
                )
            cells[address] = dataclasses.replace(cells[address], writable=True)
        write.append((first, last))

    # "invalid" wins over a type (pymodbus applies it first, so a typed cell stays valid).
    invalid: list[tuple[int, int]] = []
    invalid_path = _key(path, "invalid")
    for index, raw_range in enumerate(_list(device.get("invalid", []), invalid_path)):
        first, last = _range(raw_range, f"{invalid_path}[{index}]", count)
        for address in range(first, last + 1):
            cells[address] = _INVALID_CELL
        invalid.append((first, last))

    repeat: list[RepeatEntry] = []
    repeat_path = _key(path, "repeat")
    for index, raw_entry in enumerate(_list(device.get("repeat", []), repeat_path)):
        entry_path = f"{repeat_path}[{index}]"
        spec = _object(raw_entry, entry_path)
        _unknown_keys(spec, ("addr", "to"), entry_path)
        for key in ("addr", "to"):
            if key not in spec:
                raise ConfigurationError(f"{entry_path}: missing {key!r}")
            _list(spec[key], f"{entry_path}.{key}")
        source = _range(spec["addr"], f"{entry_path}.addr", count)
        target = _range(spec["to"], f"{entry_path}.to", count)
        copy = source[0] - 1
        for address in range(target[0], target[1] + 1):
            copy = source[0] if copy >= source[1] else copy + 1
            cells[address] = cells[copy]
        repeat.append(RepeatEntry(source, target, entry_path))

    return DeviceConfig(
        name=name,
        co_size=sizes["co size"],
        di_size=sizes["di size"],
        hr_size=sizes["hr size"],
        ir_size=sizes["ir size"],
        shared_blocks=shared,
        type_exception=type_exception,
        default_values=default_values,
        default_actions=default_actions,
        invalid=tuple(invalid),
        write=tuple(write),
        entries=tuple(entries),
        repeat=tuple(repeat),
        word_order=word_order,
        _cells=tuple(cells),
    )


# -- custom actions --------------------------------------------------------------------------


def load_custom_actions(module: str | os.PathLike[str]) -> dict[str, CustomAction]:
    """Load pymodbus's ``custom_actions_module``: its ``custom_actions_dict``.

    Args:
        module: A dotted module name (imported as pymodbus does), or the path of a ``.py``
            file (loaded under a private module name, not added to ``sys.modules``).

    Returns:
        The actions by name.

    Raises:
        ConfigurationError: The module cannot be imported, or has no ``custom_actions_dict``
            mapping names to callables.
    """
    text = os.fspath(module)
    try:
        if isinstance(module, os.PathLike) or text.endswith(".py") or os.sep in text:
            spec = importlib.util.spec_from_file_location(
                f"_trio_modbus_custom_actions_{abs(hash(text))}", text
            )
            if spec is None or spec.loader is None:
                raise ConfigurationError(f"custom actions {text!r}: not a Python file")
            loaded = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(loaded)
        else:
            loaded = importlib.import_module(text)
    except ConfigurationError:
        raise
    except Exception as exc:  # any import failure is a configuration error
        raise ConfigurationError(f"custom actions {text!r}: cannot import: {exc}") from exc
    found = getattr(loaded, "custom_actions_dict", None)
    if not isinstance(found, Mapping):
        raise ConfigurationError(f"custom actions {text!r}: no custom_actions_dict mapping")
    for name, function in found.items():
        if not isinstance(name, str) or not callable(function):
            raise ConfigurationError(
                f"custom actions {text!r}: custom_actions_dict[{name!r}] is not a callable"
                " under a string name"
            )
    return dict(found)


# -- the whole file --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SimulatorConfig:
    """A whole simulator configuration: servers, devices and the actions they may name.

    Attributes:
        servers: ``server_list``, by name, in file order.
        devices: ``device_list``, by name, in file order.
        custom_actions: The custom actions the devices were checked against.
        source: Where it was read from (a path), or None.
        faults: Fault rules to arm when the simulator starts (``trio_modbus.faults``: tables
            as in a faults file), checked already.
        token: The bearer token the HTTP API requires (``trio_modbus.token``), or None.
        units: ``trio_modbus.units``: unit id -> ``device_list`` name, each unit served by
            its own copy of that device (empty: the server's ``device_id``, or every unit id,
            reaches the one selected device).
        generators: ``trio_modbus.generators``, checked: the timed value generators, each a
            :class:`GeneratorConfig` (``device``, ``address``, ``type``, ``kind``, ``period``
            and the kind's parameters).
        on_write: ``trio_modbus.on_write``, checked, with the defaults filled in: one dict per
            entry, ``{"device": name, "address": cell, "set": [{"address": cell, "value":
            value, "type": type}, ...], "fault": rule or None}``.
        scenario: ``trio_modbus.scenario``, checked, with the defaults filled in: one dict per
            step, its trigger (``{"at": seconds}`` or ``{"after_requests": count}``) and
            ``"device"``, ``"set"``, ``"fault"`` (a rule or None) and ``"clear_faults"``.
    """

    servers: Mapping[str, ServerConfig]
    devices: Mapping[str, DeviceConfig]
    custom_actions: Mapping[str, CustomAction] = dataclasses.field(default_factory=dict)
    source: str | None = None
    faults: tuple[Mapping[str, Any], ...] = ()
    token: str | None = None
    units: Mapping[int, str] = dataclasses.field(default_factory=dict)
    generators: tuple[GeneratorConfig, ...] = ()
    on_write: tuple[Mapping[str, Any], ...] = ()
    scenario: tuple[Mapping[str, Any], ...] = ()

    def select(
        self, modbus_server: str | None = None, modbus_device: str | None = None
    ) -> tuple[ServerConfig, DeviceConfig]:
        """Pick the server and the device to simulate.

        Args:
            modbus_server: A ``server_list`` name; None takes the only (or first) one.
            modbus_device: A ``device_list`` name; None takes the only (or first) one.

        Returns:
            ``(server, device)``.

        Raises:
            ConfigurationError: A name is not in the file (the message lists the names), or
                the file has no server or no device.
        """
        return (
            _pick(self.servers, modbus_server, "server_list"),
            _pick(self.devices, modbus_device, "device_list"),
        )


def _pick(table: Mapping[str, Any], name: str | None, what: str) -> Any:
    if not table:
        raise ConfigurationError(f"{what}: empty; nothing to select")
    if name is None:
        return next(iter(table.values()))
    if name not in table:
        raise ConfigurationError(f"{what}: no entry {name!r}; valid: {_choices(list(table))}")
    return table[name]


def _read_json(source: str | os.PathLike[str]) -> Any:
    text = os.fspath(source)
    try:
        with open(text, encoding="utf-8") as file:
            return json.load(file)
    except OSError as exc:
        raise ConfigurationError(f"simulator file {text!r}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"simulator file {text!r} is not valid JSON: {exc.msg} (line {exc.lineno},"
            f" column {exc.colno})"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"simulator file {text!r} is not UTF-8: {exc}") from exc


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    *,
    custom_actions_module: str | os.PathLike[str] | None = None,
    custom_actions: Mapping[str, CustomAction] | None = None,
) -> SimulatorConfig:
    """Read a pymodbus simulator configuration (``server_list`` and ``device_list``).

    Everything is checked before anything is returned: a bad file raises and builds
    nothing. What pymodbus accepts is accepted (``kwargs`` for ``parameters``,
    ``ignore_missing_slaves`` for ``ignore_missing_devices``, ...), plus the ``int16`` and
    ``float64`` sections. The differences from pymodbus, each a fix:

    * a cell listed in ``invalid`` answers 02 even when a type section also defines it
      (pymodbus lets the type win);
    * a value that does not fit its type, a multi-register range of the wrong length, a
      reversed range and an unknown action parameter are errors here (pymodbus stores
      garbage, or fails on the first read);
    * strings are stored as UTF-8 (pymodbus packs a non-ASCII character into one register,
      which overflows).

    Args:
        source: A JSON file path, the parsed JSON (a mapping), or None for the built-in
            ``default.json`` (Modbus/TCP on 127.0.0.1:5020, one device).
        custom_actions_module: pymodbus's option: a dotted module name or a ``.py`` path
            whose ``custom_actions_dict`` adds actions (a name of a built-in replaces it).
        custom_actions: Actions by name, given directly (merged over the module's).

    Returns:
        The configuration.

    Raises:
        ConfigurationError: The file cannot be read, is not JSON, or does not describe a
            simulator; the message names the JSON path (``device_list.device.uint32[3].addr``)
            and, where there are some, the valid choices.
    """
    actions: dict[str, CustomAction] = {}
    if custom_actions_module is not None:
        actions.update(load_custom_actions(custom_actions_module))
    if custom_actions is not None:
        for name, function in custom_actions.items():
            if not isinstance(name, str) or not callable(function):
                raise ConfigurationError(f"custom_actions[{name!r}] is not a callable")
        actions.update(custom_actions)
    where: str | None
    if source is None:
        document = _read_json(_DEFAULT_FILE)
        where = str(_DEFAULT_FILE)
    elif isinstance(source, Mapping):
        document = source
        where = None
    else:
        document = _read_json(source)
        where = os.fspath(source)
    top = _object(document, "(top level)")
    _unknown_keys(top, ("server_list", "device_list", "trio_modbus"), "")
    for key in ("server_list", "device_list"):
        if key not in top:
            raise ConfigurationError(
                f"{key}: missing (the file needs server_list and device_list)"
            )
    servers_raw = _object(top["server_list"], "server_list")
    devices_raw = _object(top["device_list"], "device_list")
    extensions = _extensions(top.get("trio_modbus", {}), [str(name) for name in devices_raw])
    servers = {
        str(name): _server(str(name), entry, _key("server_list", str(name)))
        for name, entry in servers_raw.items()
    }
    devices = {
        str(name): _device(
            str(name),
            entry,
            _key("device_list", str(name)),
            actions,
            extensions.word_orders.get(str(name), "big"),
        )
        for name, entry in devices_raw.items()
    }
    return SimulatorConfig(
        servers,
        devices,
        actions,
        where,
        extensions.faults,
        extensions.token,
        extensions.units,
        _generators(extensions.generators, devices),
        _on_write(extensions.on_write, devices),
        _scenario(extensions.scenario, devices),
    )
