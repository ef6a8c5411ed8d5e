"""The simulator's actions: what happens to a cell when it is read.

Some custom actions also run when a cell is written (see below).

Built-in actions, as pymodbus names them, with its defects fixed:

* ``increment``: add 1; past ``maxval`` (or the type's largest value) start again at
  ``minval`` (or the type's smallest). pymodbus overflows the register instead.
* ``random``: a value in ``minval .. maxval`` (pymodbus's defaults 1 .. 65536), kept inside the
  type's range. pymodbus's default overflows a 16-bit register.
* ``timestamp``: year, month - 1, day, weekday (Monday 1 .. Sunday 7), hour, minute, second in
  the cell and the 6 following ones, from the wall clock (pymodbus's order and numbering,
  kept so that clients written for it read the same values).
* ``reset``: restore every cell's initial value. pymodbus raises (the read answers 04) and
  restores nothing.
* ``uptime``: whole seconds since the simulator started (wrapping in the type's range).
  pymodbus counts from the import of its module, plus one.

A custom action is pymodbus's: ``action(registers, inx, cell, **parameters)``, where
``registers`` is the device's list of cells. One that also names ``func_code`` and
``access_type`` parameters (the extended signature of pymodbus's custom-actions
documentation) gets the request's function code and ``"get"`` or ``"set"``, and is run after
writes too.
"""

from __future__ import annotations

import inspect
import struct
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._datastore import SimulatorData

__all__ = ["bind_custom", "extended_parameters", "run_builtin", "run_custom"]

_FLOAT32_MAX = struct.unpack(">f", b"\x7f\x7f\xff\xff")[0]
_RANGES: dict[str, tuple[float, float]] = {
    "bits": (0, 0xFFFF),
    "uint16": (0, 0xFFFF),
    "int16": (-0x8000, 0x7FFF),
    "uint32": (0, 0xFFFFFFFF),
    "float32": (-_FLOAT32_MAX, _FLOAT32_MAX),
    "float64": (-1.7976931348623157e308, 1.7976931348623157e308),
}
_BITS = {"bits": 16, "uint16": 16, "int16": 16, "uint32": 32}
_EXTENDED = ("func_code", "access_type")


def _limits(kind: str, parameters: Mapping[str, Any], default: tuple[Any, Any]) -> tuple[Any, Any]:
    low, high = _RANGES[kind]
    minval = parameters.get("minval", default[0])
    maxval = parameters.get("maxval", default[1])
    lo = low if minval is None else max(minval, low)
    hi = high if maxval is None else min(maxval, high)
    return lo, hi


def _increment(data: SimulatorData, index: int, kind: str, parameters: Mapping[str, Any]) -> None:
    lo, hi = _limits(kind, parameters, (None, None))
    value = data.get(index, kind) + 1
    if value > hi or value < lo:
        value = lo
    if kind not in ("float32", "float64"):
        value = int(value)
    data.set(index, value, kind)


def _random(data: SimulatorData, index: int, kind: str, parameters: Mapping[str, Any]) -> None:
    lo, hi = _limits(kind, parameters, (1, 65536))
    if kind in ("float32", "float64"):
        value: float = data.rng.uniform(float(lo), float(hi))
    else:
        value = data.rng.randint(int(lo), int(hi))
    data.set(index, value, kind)


def _uptime(data: SimulatorData, index: int, kind: str, parameters: Mapping[str, Any]) -> None:
    seconds = int(data.uptime)
    if kind in ("float32", "float64"):
        data.set(index, float(seconds), kind)
        return
    bits = _BITS[kind]
    wrapped = seconds % (1 << bits)
    if kind == "int16" and wrapped > 0x7FFF:
        wrapped -= 0x10000
    data.set(index, wrapped, kind)


def _timestamp(data: SimulatorData, index: int, kind: str, parameters: Mapping[str, Any]) -> None:
    now = data.wall_clock()
    fields = (
        now.year,
        now.month - 1,
        now.day,
        now.weekday() + 1,
        now.hour,
        now.minute,
        now.second,
    )
    cells = data.cells
    for offset, field in enumerate(fields):
        if index + offset >= len(cells):
            break
        cells[index + offset].value = field & 0xFFFF


def _reset(data: SimulatorData, index: int, kind: str, parameters: Mapping[str, Any]) -> None:
    data.reset()


_BUILTIN: dict[str, Callable[[SimulatorData, int, str, Mapping[str, Any]], None]] = {
    "increment": _increment,
    "random": _random,
    "reset": _reset,
    "timestamp": _timestamp,
    "uptime": _uptime,
}


def run_builtin(name: str, data: SimulatorData, index: int, kind: str) -> None:
    """Run built-in action ``name`` on the value whose first cell is ``index``.

    Args:
        name: One of ``increment``, ``random``, ``reset``, ``timestamp``, ``uptime``.
        data: The device.
        index: The cell address of the value.
        kind: The value's type (``uint16``, ``float32`` ...).
    """
    cell = data.cells[index]
    # A bits cell counts as a uint16 (as in pymodbus).
    _BUILTIN[name](data, index, "uint16" if kind == "bits" else kind, cell.parameters or {})


def extended_parameters(function: Callable[..., Any]) -> tuple[str, ...]:
    """Which of ``func_code`` and ``access_type`` a custom action names.

    Args:
        function: The custom action.

    Returns:
        The names it takes, in that order; empty for pymodbus's plain signature. An action
        that names ``access_type`` is also run after writes.
    """
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return ()
    return tuple(name for name in _EXTENDED if name in parameters)


def bind_custom(function: Callable[..., Any], parameters: Mapping[str, Any]) -> None:
    """Check that a custom action can be called with ``parameters``.

    Args:
        function: The custom action.
        parameters: The entry's parameters.

    Raises:
        TypeError: The call would fail.
    """
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return  # a builtin or C function: it will tell at the first call
    extra = dict.fromkeys(extended_parameters(function), None)
    signature.bind([], 0, None, **extra, **parameters)


def run_custom(
    function: Callable[..., Any],
    extended: tuple[str, ...],
    data: SimulatorData,
    index: int,
    function_code: int,
    access_type: str,
) -> None:
    """Call a custom action the way pymodbus does.

    Args:
        function: The custom action.
        extended: What :func:`extended_parameters` says of it.
        data: The device.
        index: The cell address.
        function_code: The request's function code (passed when the action names
            ``func_code``).
        access_type: ``"get"`` or ``"set"`` (passed when the action names ``access_type``).
    """
    cell = data.cells[index]
    extra: dict[str, Any] = {}
    for name in extended:
        extra[name] = function_code if name == "func_code" else access_type
    function(data.cells, index, cell, **extra, **(cell.parameters or {}))
