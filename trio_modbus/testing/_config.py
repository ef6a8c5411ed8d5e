"""A fake device's data and faults from TOML files (what ``trio-modbus serve`` reads).

The formats are described in the reference (docs/reference/testing.rst, "Data and fault
files"), with examples.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trio_modbus._errors import ConfigurationError

from . import faults as F
from ._data import Seed

__all__ = ["FAULT_ACTIONS", "add_faults", "load_faults", "load_units"]

FAULT_ACTIONS: dict[str, type[F.Fault]] = {
    "delay": F.Delay,
    "no_reply": F.NoReply,
    "exception": F.ExceptionReply,
    "busy": F.Busy,
    "substitute": F.Substitute,
    "wrong_transaction_id": F.WrongTransactionId,
    "stale_reply": F.StaleReply,
    "wrong_unit": F.WrongUnit,
    "corrupt_checksum": F.CorruptChecksum,
    "corrupt_header": F.CorruptHeader,
    "truncate": F.Truncate,
    "garbage": F.Garbage,
    "split": F.Split,
    "duplicate": F.Duplicate,
    "local_echo": F.LocalEcho,
    "close": F.Close,
    "reset": F.Reset,
    "refuse": F.Refuse,
}
_MATCH = ("unit", "function", "sub_function", "address", "nth", "connection")
_LIFETIME = ("times", "skip", "duration", "probability", "seed", "phase")


def _read(path: str | Path, what: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        raise ConfigurationError(f"{what} file {str(path)!r}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{what} file {str(path)!r} is not valid TOML: {exc}") from exc


def _int_key(where: str, key: str) -> int:
    try:
        return int(key, 0)
    except ValueError:
        raise ConfigurationError(f"{where}: key {key!r} is not an integer") from None


def load_units(path: str | Path) -> tuple[Seed, bool]:
    """Read a data file: the seed of a :class:`~trio_modbus.testing.FakeDevice`.

    Args:
        path: The TOML file (``[unit.N.table]`` tables of ``address = value(s)``).

    Returns:
        ``(units, sparse)``, for ``FakeDevice(units, sparse=sparse)``.

    Raises:
        ConfigurationError: The file cannot be read, is not TOML, or has an unknown key (the
            key and what is allowed are named); bad values are refused by ``FakeDevice``.
    """
    document = _read(path, "data")
    unknown = set(document) - {"unit", "sparse"}
    if unknown:
        raise ConfigurationError(
            f"data file {str(path)!r}: unknown key {sorted(unknown)[0]!r}; allowed: unit, sparse"
        )
    sparse = document.get("sparse", False)
    if not isinstance(sparse, bool):
        raise ConfigurationError(f"data file {str(path)!r}: sparse = {sparse!r}; give true/false")
    units: dict[int, dict[str, dict[int, Any]]] = {}
    for unit_key, tables in document.get("unit", {}).items():
        unit = _int_key("unit", unit_key)
        if not isinstance(tables, Mapping):
            raise ConfigurationError(f"unit.{unit_key}: give tables, e.g. [unit.{unit_key}.coils]")
        units[unit] = {}
        for table, values in tables.items():
            if not isinstance(values, Mapping):
                raise ConfigurationError(f"unit.{unit_key}.{table}: give address = value(s)")
            where = f"unit.{unit_key}.{table}"
            units[unit][table] = {_int_key(where, a): v for a, v in values.items()}
    return units, sparse


def _match_value(key: str, value: Any) -> int | range | set[int]:
    if isinstance(value, bool):
        raise ConfigurationError(f"fault {key} = {value!r}: give an integer, a list or 'a..b'")
    if isinstance(value, int):
        return value
    if isinstance(value, list) and all(isinstance(v, int) for v in value):
        return set(value)
    if isinstance(value, str) and ".." in value:
        first, _, last = value.partition("..")
        try:
            return range(int(first, 0), int(last, 0) + 1)
        except ValueError:
            pass
    raise ConfigurationError(
        f"fault {key} = {value!r}: give an integer, a list of integers or 'first..last'"
    )


def add_faults(rules: list[Mapping[str, Any]], faults: F.Faults) -> list[F.Rule]:
    """Add rules given as data (the ``[[fault]]`` tables of a faults file) to ``faults``.

    Args:
        rules: One mapping per rule: ``action`` (a name of :data:`FAULT_ACTIONS`), match keys,
            lifetime keys and the action's own keys.
        faults: Where to add them (``dev.faults``).

    Returns:
        The rules added, in order.

    Raises:
        ConfigurationError: An unknown action or key, or a bad value (each named).
    """
    added = []
    for number, spec in enumerate(rules, 1):
        where = f"fault #{number}"
        spec = dict(spec)
        name = spec.pop("action", None)
        if name not in FAULT_ACTIONS:
            raise ConfigurationError(
                f"{where}: action = {name!r}; allowed: {', '.join(FAULT_ACTIONS)}"
            )
        action_class = FAULT_ACTIONS[name]
        own = {f.name for f in dataclasses.fields(action_class)}
        unknown = set(spec) - own - set(_MATCH) - set(_LIFETIME)
        if unknown:
            allowed = ", ".join([*sorted(own), *_MATCH, *_LIFETIME])
            raise ConfigurationError(
                f"{where}: unknown key {sorted(unknown)[0]!r} for {name}; allowed: {allowed}"
            )
        arguments = {k: v for k, v in spec.items() if k in own}
        if "pdu" in arguments:
            try:
                arguments["pdu"] = bytes.fromhex(arguments["pdu"])
            except (TypeError, ValueError):
                raise ConfigurationError(
                    f"{where}: pdu = {arguments['pdu']!r} is not hex"
                ) from None
        try:
            action = action_class(**arguments)
        except (TypeError, ConfigurationError) as exc:
            raise ConfigurationError(f"{where} ({name}): {exc}") from None
        match: dict[str, Any] = {k: _match_value(k, spec[k]) for k in _MATCH if k in spec}
        lifetime = {k: spec[k] for k in _LIFETIME if k in spec}
        try:
            added.append(faults.add(action, **match, **lifetime))
        except (TypeError, ConfigurationError) as exc:
            raise ConfigurationError(f"{where} ({name}): {exc}") from None
    return added


def load_faults(path: str | Path, faults: F.Faults) -> list[F.Rule]:
    """Read a faults file (``[[fault]]`` tables) and add its rules to ``faults``.

    Args:
        path: The TOML file.
        faults: Where to add the rules (``dev.faults``).

    Returns:
        The rules added, in order.

    Raises:
        ConfigurationError: The file cannot be read or is not TOML, or a rule is wrong (the
            rule's number, the key, the value and what is allowed are named).
    """
    document = _read(path, "faults")
    unknown = set(document) - {"fault"}
    if unknown:
        raise ConfigurationError(
            f"faults file {str(path)!r}: unknown key {sorted(unknown)[0]!r}; give [[fault]] tables"
        )
    rules = document.get("fault", [])
    if not isinstance(rules, list):
        raise ConfigurationError(f"faults file {str(path)!r}: give [[fault]] tables")
    return add_faults(rules, faults)
