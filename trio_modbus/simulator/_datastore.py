"""The simulated device: cells, typed access, and the device context a server serves.

A :class:`SimulatorData` holds one device's cells, built from a
:class:`~trio_modbus.simulator.DeviceConfig`. The server reaches it through a
:class:`SimulatorDeviceContext` (validate, read, write, as every device context); the HTTP
side reads and sets it through the typed :meth:`SimulatorData.get` /
:meth:`SimulatorData.set` and the :class:`Cell` objects.
"""

from __future__ import annotations

import random
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from ..datastore.context import ModbusBaseDeviceContext, ModbusServerContext
from ..pdu.codes import ExceptionCode
from ._actions import extended_parameters, run_builtin, run_custom
from ._config import CellType, DeviceConfig

if TYPE_CHECKING:
    from ._config import ServerConfig

__all__ = [
    "VALUE_TYPES",
    "Cell",
    "SimulatorData",
    "SimulatorDeviceContext",
    "build_server_context",
    "decode_value",
    "encode_value",
]

WordOrder: TypeAlias = Literal["big", "little"]
ValueType: TypeAlias = Literal[
    "bits", "uint16", "int16", "uint32", "int32", "float32", "float64", "string"
]
VALUE_TYPES: tuple[str, ...] = (
    "bits",
    "uint16",
    "int16",
    "uint32",
    "int32",
    "float32",
    "float64",
    "string",
)
"""The types :meth:`SimulatorData.get` and :meth:`SimulatorData.set` convert."""

_ILLEGAL_ADDRESS = ExceptionCode.ILLEGAL_DATA_ADDRESS
_STRUCTS = {
    "uint32": struct.Struct(">I"),
    "int32": struct.Struct(">i"),
    "float32": struct.Struct(">f"),
    "float64": struct.Struct(">d"),
}
_WIDTH = {"bits": 1, "uint16": 1, "int16": 1, "uint32": 2, "int32": 2, "float32": 2, "float64": 4}
# Function code -> table; bit functions address bits of cells.
_TABLE = {
    1: "co",
    5: "co",
    15: "co",
    2: "di",
    4: "ir",
    3: "hr",
    6: "hr",
    16: "hr",
    22: "hr",
    23: "hr",
}
_BIT_FUNCTIONS = frozenset({1, 2, 5, 15})
_WRITE_FUNCTIONS = frozenset({5, 6, 15, 16, 22, 23})
_CELL_WIDTH = {CellType.UINT32: 2, CellType.FLOAT32: 2, CellType.FLOAT64: 4}
_KIND = {
    CellType.BITS: "bits",
    CellType.UINT16: "uint16",
    CellType.INT16: "int16",
    CellType.UINT32: "uint32",
    CellType.FLOAT32: "float32",
    CellType.FLOAT64: "float64",
    CellType.STRING: "string",
}


def _check_word_order(word_order: str) -> None:
    if word_order not in ("big", "little"):
        raise ValueError(f"word order {word_order!r}: give 'big' or 'little'")


def encode_value(
    kind: str, value: Any, word_order: WordOrder = "big", registers: int | None = None
) -> list[int]:
    """Pack one value into 16-bit registers.

    Words are big-endian (high byte first); ``word_order="big"`` puts the high word first,
    as pymodbus does for uint32 and float32. A string is UTF-8, two bytes per register (the
    first in the high byte), padded with spaces to ``registers`` registers.

    Args:
        kind: One of :data:`VALUE_TYPES`.
        value: The value; for ``bits``, an int or a sequence of up to 16 bools (bit 0
            first).
        word_order: ``"big"`` or ``"little"`` (multi-register numbers only).
        registers: For a string, its length in registers (default: as few as hold it).

    Returns:
        The registers.

    Raises:
        ValueError: Unknown type or word order, or a value the type cannot hold.
    """
    _check_word_order(word_order)
    if kind == "string":
        if not isinstance(value, str):
            raise ValueError(f"a string value must be a str, got {value!r}")
        data = value.encode("utf-8")
        size = (len(data) + 1) // 2 if registers is None else registers
        if len(data) > 2 * size:
            raise ValueError(
                f"{value!r} is {len(data)} bytes as UTF-8, more than {size} registers hold"
            )
        data = data.ljust(2 * size, b" ")
        return [int.from_bytes(data[i : i + 2], "big") for i in range(0, 2 * size, 2)]
    if kind == "bits" and not isinstance(value, int):
        bits = list(value)
        if len(bits) > 16:
            raise ValueError(f"bits: {len(bits)} bits, a register holds 16")
        value = sum(1 << i for i, bit in enumerate(bits) if bit)
    if kind in ("bits", "uint16"):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
            raise ValueError(f"{kind}: {value!r} is not in 0..65535")
        return [value]
    if kind == "int16":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"int16: {value!r} is not an integer")
        if not -0x8000 <= value <= 0x7FFF:
            raise ValueError(f"int16: {value!r} is not in -32768..32767")
        return [value & 0xFFFF]
    packer = _STRUCTS.get(kind)
    if packer is None:
        raise ValueError(f"unknown value type {kind!r}; valid: {', '.join(VALUE_TYPES)}")
    if kind in ("uint32", "int32") and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{kind}: {value!r} is not an integer")
    try:
        packed = packer.pack(value)
    except (struct.error, OverflowError, TypeError) as exc:
        raise ValueError(f"{kind}: {value!r} does not fit ({exc})") from None
    words = [int.from_bytes(packed[i : i + 2], "big") for i in range(0, len(packed), 2)]
    return words[::-1] if word_order == "little" else words


def decode_value(kind: str, words: Sequence[int], word_order: WordOrder = "big") -> Any:
    """Unpack registers packed by :func:`encode_value`.

    Args:
        kind: One of :data:`VALUE_TYPES`.
        words: The registers (for a string, all of them).
        word_order: ``"big"`` or ``"little"``.

    Returns:
        An int, a float, a str (undecodable bytes replaced), or for ``bits`` a list of 16
        bools (bit 0 first).

    Raises:
        ValueError: Unknown type or word order, or the wrong number of registers.
    """
    _check_word_order(word_order)
    if kind == "string":
        return b"".join(w.to_bytes(2, "big") for w in words).decode("utf-8", "replace")
    width = _WIDTH.get(kind)
    if width is None:
        raise ValueError(f"unknown value type {kind!r}; valid: {', '.join(VALUE_TYPES)}")
    if len(words) != width:
        raise ValueError(f"{kind} takes {width} registers, got {len(words)}")
    if kind == "bits":
        return [bool(words[0] >> i & 1) for i in range(16)]
    if kind == "uint16":
        return words[0]
    if kind == "int16":
        return words[0] - 0x10000 if words[0] & 0x8000 else words[0]
    ordered = list(words)[::-1] if word_order == "little" else list(words)
    packed = b"".join(w.to_bytes(2, "big") for w in ordered)
    return _STRUCTS[kind].unpack(packed)[0]


class Cell:
    """One 16-bit register of a simulated device, with what the simulator knows of it.

    The attribute names are also pymodbus's where it has them (``access``,
    ``action_parameters``), so a pymodbus custom action that reads or sets
    ``cell.value`` works unchanged.

    Attributes:
        address: The cell's address (its index in :attr:`SimulatorData.cells`).
        type: What the cell holds (:class:`~trio_modbus.simulator.CellType`).
        writable: Whether Modbus writes may change it (the ``write`` section).
        action: The action run when it is read, by name, or None.
        parameters: The action's parameters, or None.
        count_read: How many reads touched it.
        count_write: How many written values landed in it (one per bit for coils).
    """

    __slots__ = (
        "_value",
        "action",
        "address",
        "count_read",
        "count_write",
        "parameters",
        "type",
        "writable",
    )

    def __init__(
        self,
        address: int,
        type: CellType,
        value: int = 0,
        writable: bool = False,
        action: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> None:
        self.address = address
        self.type = type
        self._value = value & 0xFFFF
        self.writable = writable
        self.action = action
        self.parameters = parameters
        self.count_read = 0
        self.count_write = 0

    @property
    def value(self) -> int:
        """The raw register, 0..65535.

        Setting it keeps the low 16 bits of an int (so -1 stores 0xFFFF, two's complement).

        Raises:
            TypeError: (on set) The value is not an int.
        """
        return self._value

    @value.setter
    def value(self, value: int) -> None:
        if not isinstance(value, int):
            raise TypeError(f"cell {self.address}: a register value must be an int, got {value!r}")
        self._value = int(value) & 0xFFFF

    @property
    def access(self) -> bool:
        """The pymodbus name of ``writable``."""
        return self.writable

    @access.setter
    def access(self, value: bool) -> None:
        self.writable = bool(value)

    @property
    def action_parameters(self) -> Mapping[str, Any] | None:
        """The pymodbus name of ``parameters``."""
        return self.parameters

    def __repr__(self) -> str:
        return (
            f"Cell({self.address}, {self.type.name}, value={self._value:#06x},"
            f" writable={self.writable}, action={self.action!r})"
        )


class SimulatorData:
    """The cells of one simulated device, and everything that reads or changes them.

    Built from a :class:`~trio_modbus.simulator.DeviceConfig`; the initial values are
    kept, so :meth:`reset` (and the ``reset`` action) restores them. Modbus requests reach it
    through :meth:`context` (a device context); an application or the HTTP API reads and sets
    values through :meth:`get`, :meth:`set` and :attr:`cells`, which bypass the ``write``
    permissions and count nothing. ``word_order`` (``"big"`` or ``"little"``, the device's
    ``DeviceConfig.word_order``) is their default word order.

    ``write_hook``, when not None, is called after every Modbus write that was accepted
    (:meth:`write`), with the addresses of the cells it changed, in order; the simulator
    runs ``trio_modbus.on_write`` through it. Values it stores with :meth:`set` do not call it
    again.

    Args:
        device: The device configuration.
        custom_actions: The custom actions its cells may name (by default, none: a config
            checked against custom actions needs them here too; see
            :meth:`~trio_modbus.simulator.SimulatorConfig.select`).
        clock: Monotonic seconds, for ``uptime`` (``trio.current_time`` in a Trio program, so
            that tests can use Trio's virtual clock).
        wall_clock: The local date and time, for ``timestamp``.
        seed: Seed of the random generator of the ``random`` action.
        rng: The random generator itself (instead of ``seed``).

    Raises:
        ConfigurationError: A cell names a custom action that ``custom_actions`` lacks.

    Example:
        >>> from trio_modbus.simulator import load_config, SimulatorData
        >>> server, device = load_config().select()
        >>> data = SimulatorData(device)
        >>> data.set(10, 3.5, "float32")
        >>> data.get(10, "float32"), data.cells[10].value, data.cells[11].value
        (3.5, 16480, 0)
    """

    def __init__(
        self,
        device: DeviceConfig,
        *,
        custom_actions: Mapping[str, Callable[..., Any]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = datetime.now,
        seed: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        from .._errors import ConfigurationError

        self.device = device
        self.word_order: WordOrder = device.word_order
        self.clock = clock
        self.wall_clock = wall_clock
        self.rng = rng if rng is not None else random.Random(seed)
        self.started_at = clock()
        actions = dict(custom_actions or {})
        self._custom = {name: (fn, extended_parameters(fn)) for name, fn in actions.items()}
        self._writes_run = {
            name for name, (_, ext) in self._custom.items() if "access_type" in ext
        }
        self._cells = [
            Cell(address, init.type, init.value, init.writable, init.action, init.parameters)
            for address, init in enumerate(device._cells)
        ]
        self._initial = [init.value for init in device._cells]
        for cell in self._cells:
            if (
                cell.action is not None
                and cell.action not in self._custom
                and cell.action
                not in (
                    "increment",
                    "random",
                    "reset",
                    "timestamp",
                    "uptime",
                )
            ):
                raise ConfigurationError(
                    f"device {device.name!r}: cell {cell.address} names custom action"
                    f" {cell.action!r}, which custom_actions lacks"
                )
        offsets = device.offsets
        sizes = device.sizes
        self._base = {fc: offsets[table] for fc, table in _TABLE.items()}
        self._limit = {fc: sizes[table] for fc, table in _TABLE.items()}
        self._type_exception = device.type_exception
        self.write_hook: Callable[[Sequence[int]], None] | None = None

    # -- inspection ----------------------------------------------------------------------

    @property
    def cells(self) -> Sequence[Cell]:
        """Every cell, by address; cells may be changed, not added or removed."""
        return self._cells

    @property
    def register_count(self) -> int:
        """The number of cells."""
        return len(self._cells)

    @property
    def uptime(self) -> float:
        """Seconds since the simulator started (construction, or :meth:`mark_start`)."""
        return self.clock() - self.started_at

    def mark_start(self) -> None:
        """Start counting :attr:`uptime` now (call it when the server starts serving)."""
        self.started_at = self.clock()

    def table_cells(self, table: Literal["co", "di", "ir", "hr"]) -> range:
        """The cells a table reaches (coil N is bit N % 16 of cell ``start + N // 16``).

        Args:
            table: ``"co"``, ``"di"``, ``"ir"`` or ``"hr"``.

        Returns:
            The range of cell addresses.

        Raises:
            KeyError: Unknown table.
        """
        start = self.device.offsets[table]
        return range(start, start + self.device.sizes[table])

    def value_span(self, address: int) -> int:
        """The number of cells of the value starting at ``address`` (1 for a plain cell).

        Args:
            address: A cell address.

        Returns:
            2 for uint32 and float32, 4 for float64, the string's length for a string (its
            cell and the ``NEXT`` cells after it), else 1.
        """
        cell = self._cells[address]
        if cell.type is CellType.STRING:
            end = address + 1
            while end < len(self._cells) and self._cells[end].type is CellType.NEXT:
                end += 1
            return end - address
        return _CELL_WIDTH.get(cell.type, 1)

    # -- typed access --------------------------------------------------------------------

    def get(
        self,
        address: int,
        type: ValueType | str | None = None,
        *,
        word_order: WordOrder | None = None,
        length: int | None = None,
    ) -> Any:
        """Read a value, without running actions or counting.

        Args:
            address: The first cell.
            type: One of :data:`VALUE_TYPES`; None takes the cell's own type (``uint16`` for
                an invalid or ``NEXT`` cell).
            word_order: ``"big"`` (high word first, pymodbus's) or ``"little"``; None takes
                the device's (``word_order``).
            length: Registers of a string; by default the string's span at ``address``.

        Returns:
            The value (see :func:`decode_value`).

        Raises:
            IndexError: The value does not fit in the device.
            ValueError: Unknown type or word order.
        """
        kind = type if type is not None else _KIND.get(self._cells[address].type, "uint16")
        width = (length or self.value_span(address)) if kind == "string" else _WIDTH.get(kind)
        if width is None:
            raise ValueError(f"unknown value type {kind!r}; valid: {', '.join(VALUE_TYPES)}")
        if address < 0 or address + width > len(self._cells):
            raise IndexError(f"cells {address}..{address + width - 1} are not all in the device")
        words = [c._value for c in self._cells[address : address + width]]
        return decode_value(kind, words, word_order or self.word_order)

    def set(
        self,
        address: int,
        value: Any,
        type: ValueType | str | None = None,
        *,
        word_order: WordOrder | None = None,
        length: int | None = None,
    ) -> None:
        """Store a value, bypassing the ``write`` permissions, without counting.

        Args:
            address: The first cell.
            value: The value.
            type: One of :data:`VALUE_TYPES`; None takes the cell's own type.
            word_order: ``"big"`` (high word first) or ``"little"``; None takes the
                device's (``word_order``).
            length: Registers of a string; by default the string's span at ``address``
                (a string cell) or as few as hold it.

        Raises:
            IndexError: The value does not fit in the device.
            ValueError: Unknown type or word order, or a value the type cannot hold.
        """
        kind = type if type is not None else _KIND.get(self._cells[address].type, "uint16")
        if kind == "string" and length is None and self._cells[address].type is CellType.STRING:
            length = self.value_span(address)
        words = encode_value(kind, value, word_order or self.word_order, length)
        if address < 0 or address + len(words) > len(self._cells):
            raise IndexError(
                f"cells {address}..{address + len(words) - 1} are not all in the device"
            )
        for offset, word in enumerate(words):
            self._cells[address + offset]._value = word

    def reset(self) -> None:
        """Restore every cell's initial value (counters, types and permissions stay)."""
        for cell, value in zip(self._cells, self._initial, strict=True):
            cell._value = value

    def reset_counters(self) -> None:
        """Set every cell's read and write counters to 0."""
        for cell in self._cells:
            cell.count_read = 0
            cell.count_write = 0

    # -- Modbus access -------------------------------------------------------------------

    def check(self, function_code: int, address: int, count: int) -> bool:
        """Tell whether a request may access ``count`` values at protocol ``address``.

        The rules: every cell reached is defined and not invalid; a write (5, 6, 15, 16,
        22, 23) reaches only writable cells; the range stays in its table; with
        ``type exception``, it neither starts nor ends inside a uint32, float32 or float64,
        and does not start inside a string.

        Args:
            function_code: The function code (1, 2, 3, 4, 5, 6, 15, 16, 22, 23).
            address: The protocol address (a bit address for 1, 2, 5, 15).
            count: The number of bits or registers.

        Returns:
            True when allowed; False is answered with 02.
        """
        base = self._base.get(function_code)
        if base is None or count < 1 or address < 0:
            return False
        if function_code in _BIT_FUNCTIONS:
            first, last = address >> 4, (address + count - 1) >> 4
        else:
            first, last = address, address + count - 1
        if last >= self._limit[function_code]:
            return False
        cells = self._cells
        start, end = base + first, base + last + 1
        write = function_code in _WRITE_FUNCTIONS
        invalid = CellType.INVALID
        for index in range(start, end):
            cell = cells[index]
            if cell.type is invalid or (write and not cell.writable):
                return False
        if not self._type_exception:
            return True
        index = start
        while index < end:
            kind = cells[index].type
            if kind is CellType.NEXT:
                return False
            if kind is CellType.STRING:  # may end inside the string, as in pymodbus
                index += 1
                while index < end and cells[index].type is CellType.NEXT:
                    index += 1
                continue
            width = _CELL_WIDTH.get(kind, 1)
            if index + width > end:
                return False
            index += width
        return True

    def _act(self, index: int, function_code: int) -> None:
        cell = self._cells[index]
        name = cell.action
        if name is None:
            return
        custom = self._custom.get(name)
        if custom is not None:
            run_custom(custom[0], custom[1], self, index, function_code, "get")
        else:
            run_builtin(name, self, index, _KIND.get(cell.type, "uint16"))

    def read(
        self, function_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExceptionCode:
        """Answer a read: run each value's action, count the read, return the values.

        Args:
            function_code: 1, 2 (bits) or 3, 4, 22, 23 (registers).
            address: The protocol address.
            count: The number of bits or registers.

        Returns:
            The values (bools for bit functions), or ILLEGAL_DATA_ADDRESS when
            :meth:`check` refuses.
        """
        if not self.check(function_code, address, count):
            return _ILLEGAL_ADDRESS
        cells = self._cells
        base = self._base[function_code]
        if function_code in _BIT_FUNCTIONS:
            bits: list[bool] = []
            bit = address & 15
            remaining = count
            for index in range(base + (address >> 4), base + ((address + count - 1) >> 4) + 1):
                self._act(index, function_code)
                cell = cells[index]
                cell.count_read += 1
                value = cell._value
                while remaining and bit < 16:
                    bits.append(bool(value >> bit & 1))
                    bit += 1
                    remaining -= 1
                bit = 0
            return bits
        registers: list[int] = []
        for index in range(base + address, base + address + count):
            self._act(index, function_code)
            cell = cells[index]
            cell.count_read += 1
            registers.append(cell._value)
        return registers

    def write(
        self, function_code: int, address: int, values: int | Sequence[int]
    ) -> ExceptionCode | None:
        """Answer a write: all the values, or none when any target is refused.

        Custom actions with the extended signature (``access_type``) then run on the
        written cells with ``access_type="set"``.

        Args:
            function_code: 5, 15 (bits) or 6, 16, 22, 23 (registers).
            address: The protocol address.
            values: The values (bits as bools or 0/1).

        Returns:
            None, or ILLEGAL_DATA_ADDRESS (nothing written) when :meth:`check` refuses.
        """
        new = [values] if isinstance(values, int) else list(values)
        if not self.check(function_code, address, len(new)):
            return _ILLEGAL_ADDRESS
        cells = self._cells
        base = self._base[function_code]
        touched: list[int] = []
        if function_code in _BIT_FUNCTIONS:
            for offset, bit in enumerate(new):
                position = address + offset
                index = base + (position >> 4)
                cell = cells[index]
                mask = 1 << (position & 15)
                cell._value = (cell._value | mask) if bit else (cell._value & ~mask)
                cell.count_write += 1
                if not touched or touched[-1] != index:
                    touched.append(index)
        else:
            for offset, value in enumerate(new):
                index = base + address + offset
                cell = cells[index]
                cell.value = value
                cell.count_write += 1
                touched.append(index)
        if self._writes_run:
            for index in touched:
                name = cells[index].action
                if name in self._writes_run:
                    function, extended = self._custom[name]
                    run_custom(function, extended, self, index, function_code, "set")
        if self.write_hook is not None:
            self.write_hook(touched)
        return None

    def context(self) -> SimulatorDeviceContext:
        """A device context serving this data.

        Returns:
            A new :class:`SimulatorDeviceContext`.
        """
        return SimulatorDeviceContext(self)


class SimulatorDeviceContext(ModbusBaseDeviceContext):
    """The device context of a simulated device: Modbus requests on a :class:`SimulatorData`.

    ``validate`` is :meth:`SimulatorData.check`, ``getValues`` :meth:`SimulatorData.read`,
    ``setValues`` :meth:`SimulatorData.write` and ``reset`` :meth:`SimulatorData.reset`. It has
    no file records or FIFO queues (those answer 01).

    Args:
        data: The device.
    """

    def __init__(self, data: SimulatorData) -> None:
        self.data = data
        self.store = {}

    def validate(self, fx: int, address: int, count: int = 1) -> bool:
        """Tell whether the request may reach ``count`` values at ``address``.

        Args:
            fx: The function code.
            address: The protocol address.
            count: The number of values.

        Returns:
            :meth:`SimulatorData.check`'s answer.
        """
        return self.data.check(fx, address, count)

    def getValues(self, fx: int, address: int, count: int = 1) -> list[int] | ExceptionCode:
        """Read values (running actions).

        Args:
            fx: The function code.
            address: The protocol address.
            count: The number of values.

        Returns:
            The values, or ILLEGAL_DATA_ADDRESS.
        """
        return self.data.read(fx, address, count)  # type: ignore[return-value]

    def setValues(
        self, fx: int, address: int, values: int | Sequence[int]
    ) -> ExceptionCode | None:
        """Write values (all or nothing).

        Args:
            fx: The function code.
            address: The protocol address.
            values: One value or several.

        Returns:
            None, or ILLEGAL_DATA_ADDRESS.
        """
        return self.data.write(fx, address, values)

    def reset(self) -> None:
        """Restore the initial values."""
        self.data.reset()

    def __str__(self) -> str:
        return f"Simulated device {self.data.device.name!r}"


def build_server_context(
    data: SimulatorData, server: ServerConfig | None = None
) -> ModbusServerContext:
    """The server context of a simulator: one device, at one unit id or at all.

    Args:
        data: The device.
        server: The server entry; with a ``device_id`` only that unit is served (another
            unit gets 0B, or no reply with ``ignore_missing_devices``); without one (or
            without a server), every unit id reaches the device, as in pymodbus.

    Returns:
        A new :class:`~trio_modbus.datastore.context.ModbusServerContext`.
    """
    context = data.context()
    if server is not None and server.device_id is not None:
        return ModbusServerContext(devices={server.device_id: context}, single=False)
    return ModbusServerContext(devices=context, single=True)
