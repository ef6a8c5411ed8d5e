"""Device contexts (one Modbus device's data) and the server context (unit id → device).

Names follow the pymodbus seed: ``ModbusBaseDeviceContext``, ``ModbusDeviceContext`` and
``ModbusServerContext``.

The contract with the request executor:

1. ``validate(fx, address, count)`` is called first; False → ILLEGAL DATA ADDRESS (02).
2. Then ``getValues`` / ``setValues``; an ``ExceptionCode`` (an int) returned by either is
   answered as that exception; an exception raised by either is answered with SERVER DEVICE
   FAILURE (04).

Function code 23 (read/write multiple registers) is validated in two halves: the executor passes
``fx=16`` for the write half and ``fx=3`` for the read half. Function code 22 (mask write) is
validated like a read, because it needs the current value.

A fast path (the server's MBAP lane) may skip the calls: ``ModbusDeviceContext.window(fx)``
gives the value list of a plain sequential block and the address range that ``validate``
accepts, or None where only the calls are right.
"""

from __future__ import annotations

import collections
import types
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from .._errors import ConfigurationError, ModbusError
from .._layouts import ADDRESS_SPACE, MAX_FILE_RECORD_NUMBER
from ..pdu.codes import ExceptionCode
from .blocks import BaseModbusDataBlock, ModbusSequentialDataBlock, ValueList

__all__ = [
    "FILE_RECORD_LIMIT",
    "WRITE_FUNCTION_CODES",
    "BlockWindow",
    "ModbusBaseDeviceContext",
    "ModbusDeviceContext",
    "ModbusServerContext",
    "NoSuchIdException",
]

FILE_RECORD_LIMIT = MAX_FILE_RECORD_NUMBER + 1  # records per file: numbers 0..0x270F (6.14)
WRITE_FUNCTION_CODES = frozenset({5, 6, 15, 16})  # validated with the block's write rule
_MAX_FILE_NUMBER = 0xFFFF  # files are numbered 1..0xFFFF
_MAX_UNIT_ID = 0xFF  # unit ids 0..255 (MBAP carries one byte)

_ILLEGAL_ADDRESS = ExceptionCode.ILLEGAL_DATA_ADDRESS
_ILLEGAL_FUNCTION = ExceptionCode.ILLEGAL_FUNCTION

_DEFAULT_FX_MAPPER: Mapping[int, str] = types.MappingProxyType(
    {
        1: "c",
        5: "c",
        15: "c",
        2: "d",
        3: "h",
        6: "h",
        16: "h",
        22: "h",
        23: "h",
        4: "i",
    }
)
_tuple_new = tuple.__new__
# The standard function codes that address bits (coils, discrete inputs) and registers.
_BIT_FUNCTIONS = frozenset(fc for fc, key in _DEFAULT_FX_MAPPER.items() if key in ("c", "d"))
_REGISTER_FUNCTIONS = frozenset(fc for fc, key in _DEFAULT_FX_MAPPER.items() if key in ("h", "i"))


class NoSuchIdException(ModbusError, KeyError):
    """The server context holds no device for a unit id (and no device 0 to fall back to)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _check_registers(values: Iterable[int], what: str) -> list[int]:
    """Return ``values`` as a list, checking that each is a 16-bit register value."""
    result = list(values)
    for value in result:
        if not 0 <= value <= 0xFFFF:
            raise ConfigurationError(f"{what}: {value!r} is not a 16-bit register value")
    return result


class BlockWindow(NamedTuple):
    """The values a function code reaches on a device, to read and write them directly.

    What :meth:`ModbusDeviceContext.window` returns: the live value list of a plain
    :class:`~trio_modbus.datastore.blocks.ModbusSequentialDataBlock` and how protocol addresses
    map onto it. For ``low <= address`` and ``address + count <= high``, the values
    ``values[address + offset : address + offset + count]`` are what ``getValues`` returns,
    and (for registers) bytes ``2 * (address + offset)`` onwards of ``image`` are those values
    packed; writing through ``values`` (registers packed big-endian with
    :meth:`~trio_modbus.datastore.blocks.ValueList.set_packed`) is what ``setValues`` does. A
    range outside ``low .. high`` is one that ``validate`` refuses.

    A window holds no copy. It stays right while the device keeps its blocks, the block its
    value list, and the list its length (then ask for a new one). A named tuple rather than a
    frozen dataclass: a fast path asks for one per batch of requests, which is often one
    request, and a tuple is built in a fraction of the time.

    Attributes:
        values: The block's value list (live).
        image: The list's register image (live) for a register function; None for a bit
            function.
        offset: What to add to a protocol address to get the list index.
        low: The lowest protocol address served.
        high: One past the highest protocol address served (at most 65536); no address is
            served when ``high <= low``.
    """

    values: ValueList
    image: bytearray | None
    offset: int
    low: int
    high: int


class ModbusBaseDeviceContext:
    """Interface of a device context (the data of one Modbus device).

    A subclass implements ``getValues`` and ``setValues`` (and may override ``validate`` and
    ``reset``). The defaults here answer ILLEGAL FUNCTION for values, file records and FIFO
    queues, and accept every range in ``validate`` (so a pymodbus 3.9+ style context, which
    signals a bad range by returning an exception code from ``getValues``, keeps working).
    No ``__init__`` is required from a subclass.

    Attributes:
        store: Data blocks by store key (``"c"``, ``"d"``, ``"h"``, ``"i"`` and registered keys).
    """

    store: dict[str, BaseModbusDataBlock[Any]]
    _fx_mapper: Mapping[int, str] = _DEFAULT_FX_MAPPER

    def decode(self, fx: int) -> str:
        """Return the store key that function code ``fx`` addresses.

        The map is pymodbus's: 1, 5, 15 → ``"c"``; 2 → ``"d"``; 3, 6, 16, 22, 23 → ``"h"``;
        4 → ``"i"``; plus the codes added with ``register``. Unknown codes give ``"x"``
        (pymodbus 3.12), which no store holds.

        Args:
            fx: A function code.

        Returns:
            The store key.
        """
        return self._fx_mapper.get(fx, "x")

    def encode(self, fx: str) -> int:
        """Return the read function code of store key ``fx`` (the inverse of ``decode``).

        pymodbus has no such method any more; this is the inverse mapping: ``"c"`` → 1,
        ``"d"`` → 2, ``"h"`` → 3, ``"i"`` → 4, and for a registered key the lowest function
        code mapped to it.

        Args:
            fx: A store key.

        Returns:
            The lowest function code mapped to the key.

        Raises:
            KeyError: No function code maps to ``fx``.
        """
        codes = [code for code, key in self._fx_mapper.items() if key == fx]
        if not codes:
            raise KeyError(fx)
        return min(codes)

    def register(
        self,
        fx: int,
        slave_id: str | int = 0x00,
        func: BaseModbusDataBlock[Any] | None = None,
    ) -> None:
        """Give function code ``fx`` its own data block (for custom function codes).

        Two call forms are accepted: pymodbus's implementation,
        ``register(function_code, "key", datablock)``, where the second argument is the store
        key; and the seed's spelling, ``register(fx, slave_id=0, func=datablock)``, where an
        integer second argument is ignored (a device context is already one device) and the
        key is ``"fc%02x" % fx``. The mapping is per context (pymodbus changes a class-level
        map shared by all contexts).

        Args:
            fx: The function code, 1..127.
            slave_id: The store key (str), or an ignored unit id (int).
            func: The data block; None gives a fresh ``ModbusSequentialDataBlock.create()``.

        Raises:
            ConfigurationError: ``fx`` is not a function code.
        """
        if not 1 <= fx <= 0x7F:
            raise ConfigurationError(f"function code {fx!r} is not in 1..127")
        key = slave_id if isinstance(slave_id, str) else f"fc{fx:02x}"
        store = getattr(self, "store", None)
        if store is None:
            store = self.store = {}
        store[key] = func if func is not None else ModbusSequentialDataBlock.create()
        mapper = dict(self._fx_mapper)
        mapper[fx] = key
        self._fx_mapper = mapper

    def reset(self) -> None:
        """Reset every data block to its default values."""
        for block in getattr(self, "store", {}).values():
            block.reset()

    def validate(self, fx: int, address: int, count: int = 1) -> bool:
        """Tell whether the request may address ``count`` values at ``address``.

        Args:
            fx: The function code.
            address: The protocol address.
            count: The number of values.

        Returns:
            True (the base accepts everything; ``getValues``/``setValues`` may still refuse).
        """
        return True

    def getValues(self, fx: int, address: int, count: int = 1) -> list[int] | ExceptionCode:
        """Return ``count`` values at protocol ``address`` of the store ``fx`` addresses.

        Args:
            fx: The function code.
            address: The protocol address.
            count: The number of values.

        Returns:
            ILLEGAL_FUNCTION (the base holds no data).
        """
        return _ILLEGAL_FUNCTION

    def setValues(
        self, fx: int, address: int, values: int | Sequence[int]
    ) -> ExceptionCode | None:
        """Store ``values`` at protocol ``address`` of the store ``fx`` addresses.

        Args:
            fx: The function code.
            address: The protocol address.
            values: One value or a sequence of values.

        Returns:
            ILLEGAL_FUNCTION (the base holds no data).
        """
        return _ILLEGAL_FUNCTION

    def get_values(self, fx: int, address: int, count: int = 1) -> list[int] | ExceptionCode:
        """Snake_case spelling of ``getValues`` (delegates to it).

        Args:
            fx: The function code.
            address: The protocol address.
            count: The number of values.

        Returns:
            The values, or an exception code.
        """
        return self.getValues(fx, address, count)

    def set_values(
        self, fx: int, address: int, values: int | Sequence[int]
    ) -> ExceptionCode | None:
        """Snake_case spelling of ``setValues`` (delegates to it).

        Args:
            fx: The function code.
            address: The protocol address.
            values: One value or a sequence of values.

        Returns:
            None, or an exception code.
        """
        return self.setValues(fx, address, values)

    async def async_getValues(
        self, fx: int, address: int, count: int = 1
    ) -> list[int] | ExceptionCode:
        """Awaitable ``getValues`` (pymodbus 3.x hook; the default calls ``getValues``).

        Args:
            fx: The function code.
            address: The protocol address.
            count: The number of values.

        Returns:
            The values, or an exception code.
        """
        return self.getValues(fx, address, count)

    async def async_setValues(
        self, fx: int, address: int, values: int | Sequence[int]
    ) -> ExceptionCode | None:
        """Awaitable ``setValues`` (pymodbus 3.x hook; the default calls ``setValues``).

        Args:
            fx: The function code.
            address: The protocol address.
            values: One value or a sequence of values.

        Returns:
            None, or an exception code.
        """
        return self.setValues(fx, address, values)

    def read_file_record(
        self, file_number: int, record_number: int, count: int
    ) -> list[int] | ExceptionCode:
        """Read ``count`` records of a file (function 0x14).

        Args:
            file_number: The file, 1..0xFFFF.
            record_number: The first record, 0..0x270F.
            count: The number of records (16-bit registers).

        Returns:
            ILLEGAL_FUNCTION (the base holds no files).
        """
        return _ILLEGAL_FUNCTION

    def write_file_record(
        self, file_number: int, record_number: int, values: Sequence[int]
    ) -> ExceptionCode | None:
        """Write records of a file (function 0x15).

        Args:
            file_number: The file, 1..0xFFFF.
            record_number: The first record, 0..0x270F.
            values: The records (16-bit registers).

        Returns:
            ILLEGAL_FUNCTION (the base holds no files).
        """
        return _ILLEGAL_FUNCTION

    def read_fifo_queue(self, address: int) -> list[int] | ExceptionCode:
        """Read the FIFO queue at a FIFO pointer address (function 0x18).

        Args:
            address: The FIFO pointer address.

        Returns:
            ILLEGAL_FUNCTION (the base holds no queues).
        """
        return _ILLEGAL_FUNCTION


class ModbusDeviceContext(ModbusBaseDeviceContext):
    """The data of one device: four data blocks, files and FIFO queues.

    Without ``zero_mode`` (the pymodbus default) protocol address N is block address N + 1, so
    ``ModbusSequentialDataBlock(0, [v0, ..., v9])`` serves v1..v9 at protocol addresses 0..8;
    with ``zero_mode=True`` protocol address N is block address N. File records and FIFO
    pointer addresses are never offset.

    Args:
        co: Coils block (FC 1, 5, 15).
        di: Discrete inputs block (FC 2).
        hr: Holding registers block (FC 3, 6, 16, 22, 23).
        ir: Input registers block (FC 4).
        zero_mode: Map protocol address N to block address N instead of N + 1.
        file_records: Initial files, ``{file_number: registers | size}``; none by default.
        fifo_queues: Initial FIFO queues, ``{pointer_address: values (oldest first)}``; none
            by default.

    A missing block is a fresh ``ModbusSequentialDataBlock.create()`` (65536 zeros at address
    0); no block is ever shared between two contexts unless the caller passes the same one.

    Example:
        >>> ctx = ModbusDeviceContext(hr=ModbusSequentialDataBlock(0, list(range(10))))
        >>> ctx.getValues(3, 0, 3)
        [1, 2, 3]
        >>> ctx.add_file(4, 100)
        >>> ctx.write_file_record(4, 7, [0x1234])
        >>> ctx.read_file_record(4, 7, 1)
        [4660]
    """

    def __init__(
        self,
        co: BaseModbusDataBlock[Any] | None = None,
        di: BaseModbusDataBlock[Any] | None = None,
        hr: BaseModbusDataBlock[Any] | None = None,
        ir: BaseModbusDataBlock[Any] | None = None,
        zero_mode: bool = False,
        *,
        file_records: Mapping[int, Sequence[int] | int] | None = None,
        fifo_queues: Mapping[int, Sequence[int]] | None = None,
    ) -> None:
        create = ModbusSequentialDataBlock.create
        self.store = {
            "d": di if di is not None else create(),
            "c": co if co is not None else create(),
            "i": ir if ir is not None else create(),
            "h": hr if hr is not None else create(),
        }
        self._offset = 0 if zero_mode else 1
        self.file_records: dict[int, list[int]] = {}
        self._file_defaults: dict[int, list[int]] = {}
        self.fifo_queues: dict[int, collections.deque[int]] = {}
        self._fifo_defaults: dict[int, list[int]] = {}
        for number, initial in (file_records or {}).items():
            self.add_file(number, initial)
        for address, queue in (fifo_queues or {}).items():
            self.add_fifo_queue(address, queue)

    def window(self, function_code: int) -> BlockWindow | None:
        """Return the values ``function_code`` reaches, to read and write them directly.

        For a fast path that answers requests without calling ``validate``, ``getValues`` and
        ``setValues`` (the server's MBAP lane asks once per batch of requests): what the window
        gives is what those methods do in this class, not in a subclass that overrides them.

        Args:
            function_code: A standard data function: 1, 2, 5, 15 (bits) or 3, 4, 6, 16, 22,
                23 (registers), mapped to its block as ``decode`` maps it (and ``register``
                changes it).

        Returns:
            The window, or None when there is no such block, when it is not exactly a
            ``ModbusSequentialDataBlock`` holding a ``ValueList`` (a subclass, a sparse block,
            a plain list assigned to ``values``), when a register block holds a value that
            does not fit in a register (no image), for 0x17 when 0x03, 0x10 and 0x17 do not
            all map to the same block, or for any other function code.
        """
        registers = function_code in _REGISTER_FUNCTIONS
        if not registers and function_code not in _BIT_FUNCTIONS:
            return None
        # The map ``decode`` reads, read here directly: the window is this class's behaviour.
        mapper = self._fx_mapper
        key = mapper.get(function_code, "x")
        # 0x17 reaches its block through its halves, a 0x03 read and a 0x10 write: one window
        # only when all three map to the same store key.
        if function_code == 23 and not mapper.get(3, "x") == key == mapper.get(16, "x"):
            return None
        block = self.store.get(key)
        if type(block) is not ModbusSequentialDataBlock:
            return None
        values = block.values
        if type(values) is not ValueList:
            return None
        image = None
        if registers:
            image = values.image()
            if image is None:
                return None
        offset = self._offset - block.address  # protocol address + offset = list index
        # The protocol addresses served: low .. high - 1 (conditionals: quicker than min/max).
        low = -offset if offset < 0 else 0
        high = len(values) - offset
        if high > ADDRESS_SPACE:
            high = ADDRESS_SPACE
        # What BlockWindow(...) does, without the call of its Python-level __new__.
        return _tuple_new(BlockWindow, (values, image, offset, low, high))

    @property
    def zero_mode(self) -> bool:
        """Whether protocol address N is block address N (True) or N + 1 (False)."""
        return self._offset == 0

    @zero_mode.setter
    def zero_mode(self, value: bool) -> None:
        self._offset = 0 if value else 1

    def __str__(self) -> str:
        return "Modbus device Context"

    def reset(self) -> None:
        """Reset the data blocks, files and FIFO queues to their initial contents (in place)."""
        for block in self.store.values():
            block.reset()
        for number, default in self._file_defaults.items():
            self.file_records[number][:] = default
        for address, default in self._fifo_defaults.items():
            queue = self.fifo_queues[address]
            queue.clear()
            queue.extend(default)

    def validate(self, fx: int, address: int, count: int = 1) -> bool:
        """Tell whether ``count`` values at protocol ``address`` may be accessed by ``fx``.

        Write function codes (5, 6, 15, 16) use the block's ``validate_write`` (a mutable
        sparse block accepts new addresses); every other code uses the block's ``validate``.

        Args:
            fx: The function code (16 for the write half of 23, 3 for its read half).
            address: The protocol address.
            count: The number of values.

        Returns:
            True when the access is allowed; False for an unknown function code.
        """
        block = self.store.get(self.decode(fx))
        if block is None:
            return False
        if fx in WRITE_FUNCTION_CODES:
            return block.validate_write(address + self._offset, count)
        return block.validate(address + self._offset, count)

    def getValues(self, fx: int, address: int, count: int = 1) -> list[int] | ExceptionCode:
        """Return ``count`` values at protocol ``address`` of the block ``fx`` addresses.

        Args:
            fx: The function code.
            address: The protocol address.
            count: The number of values.

        Returns:
            The values, or an exception code (ILLEGAL_FUNCTION for an unknown code).
        """
        block = self.store.get(self.decode(fx))
        if block is None:
            return _ILLEGAL_FUNCTION
        return block.getValues(address + self._offset, count)

    def setValues(
        self, fx: int, address: int, values: int | Sequence[int]
    ) -> ExceptionCode | None:
        """Store ``values`` at protocol ``address`` of the block ``fx`` addresses.

        Args:
            fx: The function code.
            address: The protocol address.
            values: One value or a sequence of values.

        Returns:
            None, or an exception code (ILLEGAL_FUNCTION for an unknown code).
        """
        block = self.store.get(self.decode(fx))
        if block is None:
            return _ILLEGAL_FUNCTION
        return block.setValues(address + self._offset, values)

    # -- file records (0x14 / 0x15) ---------------------------------------------------------

    def add_file(self, number: int, size_or_values: int | Sequence[int]) -> None:
        """Create (or replace) file ``number`` for function codes 0x14 / 0x15.

        Args:
            number: The file number, 1..0xFFFF.
            size_or_values: The number of records (all zero), or the initial records. At most
                10000 records (record numbers 0..0x270F).

        Raises:
            ConfigurationError: Bad file number, size or register value.
        """
        if not 1 <= number <= _MAX_FILE_NUMBER:
            raise ConfigurationError(f"file number {number!r} is not in 1..0xFFFF")
        if isinstance(size_or_values, int):
            if not 0 <= size_or_values <= FILE_RECORD_LIMIT:
                raise ConfigurationError(
                    f"file {number}: size {size_or_values!r} is not in 0..{FILE_RECORD_LIMIT}"
                )
            records = [0] * size_or_values
        else:
            records = _check_registers(size_or_values, f"file {number}")
            if len(records) > FILE_RECORD_LIMIT:
                raise ConfigurationError(
                    f"file {number}: {len(records)} records, more than {FILE_RECORD_LIMIT}"
                )
        self.file_records[number] = records
        self._file_defaults[number] = list(records)

    def remove_file(self, number: int) -> None:
        """Remove file ``number`` (reads and writes of it then answer 02).

        Args:
            number: The file number.

        Raises:
            KeyError: There is no such file.
        """
        del self.file_records[number]
        del self._file_defaults[number]

    def read_file_record(
        self, file_number: int, record_number: int, count: int
    ) -> list[int] | ExceptionCode:
        """Read ``count`` records of a file (function 0x14).

        Args:
            file_number: The file number.
            record_number: The first record.
            count: The number of records.

        Returns:
            The records, or ILLEGAL_DATA_ADDRESS when the file is missing or the range leaves
            it.
        """
        records = self.file_records.get(file_number)
        end = record_number + count
        if records is None or record_number < 0 or count < 0 or end > len(records):
            return _ILLEGAL_ADDRESS
        return records[record_number:end]

    def write_file_record(
        self, file_number: int, record_number: int, values: Sequence[int]
    ) -> ExceptionCode | None:
        """Write records of a file (function 0x15); all or nothing.

        Args:
            file_number: The file number.
            record_number: The first record.
            values: The records.

        Returns:
            None, or ILLEGAL_DATA_ADDRESS (nothing written) when the file is missing or the
            range leaves it.
        """
        records = self.file_records.get(file_number)
        end = record_number + len(values)
        if records is None or record_number < 0 or end > len(records):
            return _ILLEGAL_ADDRESS
        records[record_number:end] = values
        return None

    # -- FIFO queues (0x18) -----------------------------------------------------------------

    def add_fifo_queue(self, address: int, values: Iterable[int] = ()) -> collections.deque[int]:
        """Create (or replace) the FIFO queue at pointer ``address``.

        Args:
            address: The FIFO pointer address, 0..0xFFFF (a protocol address, never offset).
            values: The initial contents, oldest first.

        Returns:
            The queue (``append`` adds the newest value).

        Raises:
            ConfigurationError: Bad address or register value.
        """
        if not 0 <= address <= 0xFFFF:
            raise ConfigurationError(f"FIFO pointer address {address!r} is not in 0..0xFFFF")
        initial = _check_registers(values, f"FIFO {address}")
        queue = collections.deque(initial)
        self.fifo_queues[address] = queue
        self._fifo_defaults[address] = initial
        return queue

    def fifo_queue(self, address: int) -> collections.deque[int]:
        """Return the FIFO queue at pointer ``address``, creating an empty one if absent.

        Applications push values with ``append`` (newest at the right) and may ``popleft``.
        The queue has no length limit; a read of more than 31 entries is answered with
        ILLEGAL DATA VALUE (03) by the executor.

        Args:
            address: The FIFO pointer address, 0..0xFFFF.

        Returns:
            The queue.
        """
        queue = self.fifo_queues.get(address)
        if queue is None:
            queue = self.add_fifo_queue(address)
        return queue

    def read_fifo_queue(self, address: int) -> list[int] | ExceptionCode:
        """Return the contents of the FIFO queue at ``address``, oldest first (function 0x18).

        Reading does not remove the values (spec 6.18: "reads the queue contents, but does
        not clear them").

        Args:
            address: The FIFO pointer address.

        Returns:
            The values, or ILLEGAL_DATA_ADDRESS when there is no queue at ``address``.
        """
        queue = self.fifo_queues.get(address)
        if queue is None:
            return _ILLEGAL_ADDRESS
        return list(queue)


def _check_unit_id(unit_id: Any) -> int:
    """Return ``unit_id`` if it is an int in 0..255, else raise ConfigurationError."""
    if isinstance(unit_id, bool) or not isinstance(unit_id, int):
        raise ConfigurationError(f"unit id {unit_id!r} is not an int")
    if not 0 <= unit_id <= _MAX_UNIT_ID:
        raise ConfigurationError(f"unit id {unit_id!r} is not in 0..255")
    return unit_id


class ModbusServerContext:
    """The devices a server serves, by unit id.

    Args:
        devices: One device context, or a mapping ``{unit_id: context}`` (pymodbus 3.12's
            spelling).
        single: True serves one context for every unit id; False looks the unit id up, falling
            back to unit 0 when present. When not given: True for one context, False for a
            mapping or None.
        device_default: The seed's spelling of ``devices``.
        **kwargs: ``slaves`` (pymodbus ≤ 3.7's spelling of ``devices``); anything else is a
            TypeError.

    Raises:
        TypeError: More than one spelling of ``devices``, or an unknown keyword.
        ConfigurationError: A unit id outside 0..255, or ``single=True`` with a mapping.

    With ``single=False`` and one context, that context becomes unit 0 (the fallback for every
    unit id), and more can be added. With ``single=True`` and no context, a fresh
    ``ModbusDeviceContext()`` is served. A mapping is copied.

    Example:
        >>> servers = ModbusServerContext(devices={1: ModbusDeviceContext()})
        >>> 1 in servers, 2 in servers
        (True, False)
    """

    def __init__(
        self,
        devices: ModbusBaseDeviceContext | Mapping[int, ModbusBaseDeviceContext] | None = None,
        single: bool | None = None,
        *,
        device_default: ModbusBaseDeviceContext
        | Mapping[int, ModbusBaseDeviceContext]
        | None = None,
        **kwargs: Any,
    ) -> None:
        slaves = kwargs.pop("slaves", None)
        if kwargs:
            raise TypeError(
                "ModbusServerContext() got unexpected keyword argument(s): "
                + ", ".join(sorted(kwargs))
            )
        given = [arg for arg in (devices, device_default, slaves) if arg is not None]
        if len(given) > 1:
            raise TypeError(
                "ModbusServerContext() takes one of devices, device_default or slaves, not several"
            )
        source = given[0] if given else None
        if single is None:
            single = isinstance(source, ModbusBaseDeviceContext)
        self.single = bool(single)
        self._devices: dict[int, ModbusBaseDeviceContext] = {}
        if isinstance(source, Mapping):
            if self.single:
                raise ConfigurationError("single=True takes one device context, not a mapping")
            for unit_id, context in source.items():
                self._devices[_check_unit_id(unit_id)] = context
        elif source is not None:
            self._devices[0] = source
        elif self.single:
            self._devices[0] = ModbusDeviceContext()

    def get(
        self, unit_id: int, default: ModbusBaseDeviceContext | None = None
    ) -> ModbusBaseDeviceContext | None:
        """Return the context serving ``unit_id`` (single, exact, or unit 0), else ``default``.

        Args:
            unit_id: The unit id.
            default: What to return when no context serves the unit id.

        Returns:
            The device context, or ``default``.
        """
        devices = self._devices
        if self.single:
            return devices.get(0, default)
        context = devices.get(unit_id)
        if context is None:
            return devices.get(0, default)
        return context

    def __getitem__(self, unit_id: int) -> ModbusBaseDeviceContext:
        """Return the context serving ``unit_id``.

        Raises:
            NoSuchIdException: No context for the id and none at unit 0.
        """
        context = self.get(unit_id)
        if context is None:
            raise NoSuchIdException(f"unit id {unit_id} does not exist, or is out of range")
        return context

    def __setitem__(self, unit_id: int, context: ModbusBaseDeviceContext) -> None:
        """Serve ``context`` at ``unit_id`` (in single mode: replace the one context).

        Raises:
            ConfigurationError: ``unit_id`` is not in 0..255.
        """
        unit_id = _check_unit_id(unit_id)
        self._devices[0 if self.single else unit_id] = context

    def __delitem__(self, unit_id: int) -> None:
        """Stop serving ``unit_id``.

        Raises:
            ConfigurationError: Single mode, or ``unit_id`` not in 0..255.
            NoSuchIdException: No context at ``unit_id``.
        """
        if self.single:
            raise ConfigurationError("cannot delete a unit id from a single-context server")
        unit_id = _check_unit_id(unit_id)
        try:
            del self._devices[unit_id]
        except KeyError:
            raise NoSuchIdException(f"unit id {unit_id} does not exist") from None

    def __contains__(self, unit_id: object) -> bool:
        """Tell whether a request to ``unit_id`` would be served (single, exact, or unit 0)."""
        if isinstance(unit_id, bool) or not isinstance(unit_id, int):
            return False
        if not 0 <= unit_id <= _MAX_UNIT_ID:
            return False
        return self.get(unit_id) is not None

    def __iter__(self) -> Iterator[tuple[int, ModbusBaseDeviceContext]]:
        """Iterate over ``(unit_id, context)`` pairs, as pymodbus did."""
        return iter(list(self._devices.items()))

    def __len__(self) -> int:
        return len(self._devices)

    def device_ids(self) -> list[int]:
        """Return the unit ids held (``[0]`` in single mode).

        Returns:
            The unit ids, in insertion order.
        """
        return list(self._devices)

    def slaves(self) -> list[int]:
        """Older pymodbus spelling of ``device_ids``.

        Returns:
            The unit ids.
        """
        return self.device_ids()

    async def async_getValues(
        self, device_id: int, fx: int, address: int, count: int = 1
    ) -> list[int] | ExceptionCode:
        """Awaitable read through the context serving ``device_id`` (pymodbus 3.12 API).

        Args:
            device_id: The unit id.
            fx: The function code.
            address: The protocol address.
            count: The number of values.

        Returns:
            The values, or an exception code.

        Raises:
            NoSuchIdException: No context serves ``device_id``.
        """
        return await self[device_id].async_getValues(fx, address, count)

    async def async_setValues(
        self, device_id: int, fx: int, address: int, values: int | Sequence[int]
    ) -> ExceptionCode | None:
        """Awaitable write through the context serving ``device_id`` (pymodbus 3.12 API).

        Args:
            device_id: The unit id.
            fx: The function code.
            address: The protocol address.
            values: One value or a sequence of values.

        Returns:
            None, or an exception code.

        Raises:
            NoSuchIdException: No context serves ``device_id``.
        """
        return await self[device_id].async_setValues(fx, address, values)
