"""The small checks the configuration readers share: each error names the JSON path.

Every function takes the value and its path in the document (``device_list.device.setup``)
and returns the value checked, or raises :class:`~trio_modbus.ConfigurationError` naming
the path, what was found and what is allowed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import ConfigurationError


def _key(path: str, key: str) -> str:
    """``path.key``, or ``path["key"]`` when the key is not an identifier."""
    part = f".{key}" if key.isidentifier() else f"[{json.dumps(key)}]"
    return (path + part) if path else part.lstrip(".")


def _choices(values: Sequence[str]) -> str:
    return ", ".join(repr(v) for v in values)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{path}: expected an object, got {value!r}")
    return value


def _list(value: Any, path: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise ConfigurationError(f"{path}: expected a list, got {value!r}")
    return value


def _unknown_keys(obj: Mapping[str, Any], allowed: Sequence[str], path: str) -> None:
    unknown = [k for k in obj if k not in allowed]
    if unknown:
        raise ConfigurationError(
            f"{_key(path, str(unknown[0]))}: unknown key; valid keys: {_choices(allowed)}"
        )


def _int(value: Any, path: str, low: int, high: int) -> int:
    if not _is_int(value) or not low <= value <= high:
        raise ConfigurationError(f"{path}: expected an integer in {low}..{high}, got {value!r}")
    return int(value)


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool) and value not in (0, 1):
        raise ConfigurationError(f"{path}: expected true or false, got {value!r}")
    return bool(value)


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"{path}: expected a string, got {value!r}")
    return value


def _one_of(value: Any, choices: Sequence[str], path: str, what: str) -> Any:
    """``value`` if it is one of ``choices``, else an error naming the path and the choices."""
    if value not in choices:
        raise ConfigurationError(f"{path}: {value!r} is not {what}; valid: {_choices(choices)}")
    return value


def _number(value: Any, path: str, integer: bool) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{path}: expected a number, got {value!r}")
    if integer and not isinstance(value, int):
        raise ConfigurationError(f"{path}: expected an integer, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigurationError(f"{path}: expected a finite number, got {value!r}")
    return value
