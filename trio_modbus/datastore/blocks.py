"""Data blocks: the storage behind one address space (coils, inputs or registers) of a device.

The names and semantics follow pymodbus 3.12 (``BaseModbusDataBlock``,
``ModbusSequentialDataBlock``, ``ModbusSparseDataBlock``), with three differences that follow
the Modbus specification rather than pymodbus:

* ``validate(address, count)`` exists again (pymodbus 3.9+ dropped it); the device context calls
  it before every read or write, and the server answers ILLEGAL DATA ADDRESS (02) when it is
  False.
* An immutable sparse block refuses a write that touches a missing address with ILLEGAL DATA
  ADDRESS (02) and writes nothing (pymodbus raises, answers 04 and has already written part).
* ``reset()`` restores the defaults *in place*, so a reference to ``block.values`` stays live.

The camelCase methods (``getValues``, ``setValues``, ``validate``) are the primary ones: they are
what a user subclass overrides, and what the device context calls. The snake_case spellings
delegate to them.
"""

from __future__ import annotations

import abc
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, Literal, SupportsIndex, TypeVar, overload

from .._errors import ConfigurationError
from ..pdu.codes import ExceptionCode

__all__ = [
    "FULL_ADDRESS_SPACE",
    "BaseModbusDataBlock",
    "ModbusSequentialDataBlock",
    "ModbusSparseDataBlock",
    "ValueList",
]

FULL_ADDRESS_SPACE = 65536  # entries in ModbusSequentialDataBlock.create(), like pymodbus

_ILLEGAL_ADDRESS = ExceptionCode.ILLEGAL_DATA_ADDRESS

_V = TypeVar("_V", list[int], dict[int, int])


def _as_list(values: int | Sequence[int]) -> list[int]:
    """Return ``values`` as a list: a single value becomes a one-element list."""
    if isinstance(values, int):
        return [values]
    if isinstance(values, list):
        return values
    return list(values)


_REGISTER = struct.Struct(">H")
_pack_register_into = _REGISTER.pack_into
# Unpackers of n big-endian registers, for the counts one request can carry (0..125).
_UNPACK_REGISTERS = [struct.Struct(f">{n}H").unpack_from for n in range(126)]
_list_setitem = list.__setitem__
_PACK_ERRORS = (struct.error, TypeError, OverflowError)


class ValueList(list[Any]):
    """The value list of a ``ModbusSequentialDataBlock``: a plain list that keeps a byte image.

    It is a ``list`` in every way (``block.values[3] = 7`` and ``block.values[:] = ...`` work and
    are seen by the server at once), and it also maintains, once asked for one with
    :meth:`image`, the values packed as big-endian 16-bit registers. The server slices register
    replies out of that image instead of packing every read (a 125-register read costs one
    slice). Every change made through the list updates the image in place; a change of length
    drops it, to be rebuilt when next asked for.

    A value that does not fit in a register (negative, above 0xFFFF, not an integer) leaves the
    list without an image until the next change; the server then takes its general path, which
    answers such a read as it always has (SERVER DEVICE FAILURE).
    """

    __slots__ = ("_image",)

    _image: bytearray | Literal[False] | None  # None: not built; False: unbuildable until a change

    def __init__(self, values: Iterable[Any] = ()) -> None:
        super().__init__(values)
        self._image = None

    def image(self) -> bytearray | None:
        """Return the values as big-endian registers (2 bytes each), building it if needed.

        Returns:
            The live image (the list keeps it in step with every change), or None when a value
            does not fit in a register.
        """
        image = self._image
        if type(image) is bytearray:
            return image
        if image is False:
            return None
        try:
            built = bytearray(struct.pack(f">{len(self)}H", *self))
        except _PACK_ERRORS:
            self._image = False
            return None
        self._image = built
        return built

    def set_packed(
        self, start: int, count: int, data: bytes | bytearray | memoryview, at: int = 0
    ) -> None:
        """Store ``count`` registers, packed big-endian in ``data`` from ``at``, at ``start``.

        The same as ``self[start:start + count] = struct.unpack_from(f">{count}H", data, at)``
        (list slice semantics), only quicker: a built image takes the bytes as they are,
        without packing them again. This is how the server's fast lane stores the registers
        of a write request.

        Args:
            start: The list index of the first register.
            count: The number of registers; ``2 * count`` bytes are read.
            data: The packed registers.
            at: Where they start in ``data``.

        Raises:
            ValueError: ``count`` or ``at`` is negative (nothing is stored).
            struct.error: ``data`` holds fewer than ``2 * count`` bytes from ``at`` (nothing
                is stored).
        """
        if at | count < 0:
            raise ValueError(f"count and at must not be negative, got {count} and {at}")
        try:
            new = _UNPACK_REGISTERS[count](data, at)
        except IndexError:  # more registers than one request carries
            new = struct.unpack_from(f">{count}H", data, at)
        image = self._image
        if image:  # built and not empty (else None, or False: unbuildable)
            # Slices of the list and of the image (twice the indices) stay in step whatever
            # ``start`` is, a change of length included.
            _list_setitem(self, slice(start, start + count), new)
            image[2 * start : 2 * (start + count)] = data[at : at + 2 * count]
        else:
            self[start : start + count] = new

    def _changed(self) -> None:
        self._image = None

    @overload
    def __setitem__(self, index: SupportsIndex, value: Any) -> None: ...
    @overload
    def __setitem__(self, index: slice, value: Iterable[Any]) -> None: ...
    def __setitem__(self, index: Any, value: Any) -> None:
        """Set a value or a slice (``list`` semantics), keeping the image in step."""
        size = len(self)
        super().__setitem__(index, value)
        image = self._image
        if type(image) is not bytearray:
            self._image = None  # not built, or unbuildable before this change: rebuild lazily
            return
        try:
            if isinstance(index, slice):
                start, stop, step = index.indices(size)
                if step != 1 or len(self) != size:
                    self._image = None
                    return
                if stop > start:
                    image[2 * start : 2 * stop] = struct.pack(
                        f">{stop - start}H", *list.__getitem__(self, index)
                    )
            else:
                position = index.__index__()
                if position < 0:
                    position += size
                _pack_register_into(image, 2 * position, value)
        except _PACK_ERRORS:
            self._image = False

    def __delitem__(self, index: Any) -> None:
        """Delete a value or a slice (``list`` semantics)."""
        self._changed()  # first: the call may fail half-way
        super().__delitem__(index)

    def __iadd__(self, values: Iterable[Any]) -> ValueList:  # type: ignore[misc]
        """Extend in place (``list`` semantics)."""
        self._changed()  # first: the call may fail half-way
        super().__iadd__(values)
        return self

    def __imul__(self, count: SupportsIndex) -> ValueList:
        """Repeat in place (``list`` semantics)."""
        self._changed()  # first: the call may fail half-way
        super().__imul__(count)
        return self

    def append(self, value: Any) -> None:
        """Append a value (``list`` semantics)."""
        self._changed()  # first: the call may fail half-way
        super().append(value)

    def extend(self, values: Iterable[Any]) -> None:
        """Append values (``list`` semantics)."""
        self._changed()  # first: the call may fail half-way
        super().extend(values)

    def insert(self, index: SupportsIndex, value: Any) -> None:
        """Insert a value (``list`` semantics)."""
        self._changed()  # first: the call may fail half-way
        super().insert(index, value)

    def pop(self, index: SupportsIndex = -1) -> Any:
        """Remove and return a value (``list`` semantics)."""
        self._changed()
        value = super().pop(index)
        return value

    def remove(self, value: Any) -> None:
        """Remove the first occurrence of ``value`` (``list`` semantics)."""
        self._changed()  # first: the call may fail half-way
        super().remove(value)

    def clear(self) -> None:
        """Remove every value (``list`` semantics)."""
        self._changed()  # first: the call may fail half-way
        super().clear()

    def sort(self, *args: Any, **kwargs: Any) -> None:
        """Sort in place (``list`` semantics)."""
        self._changed()  # first: the call may fail half-way
        super().sort(*args, **kwargs)

    def reverse(self) -> None:
        """Reverse in place (``list`` semantics)."""
        self._changed()  # first: the call may fail half-way
        super().reverse()

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        """Pickle and copy as a value list, without the image."""
        return (ValueList, (list(self),))


class BaseModbusDataBlock(abc.ABC, Generic[_V]):
    """Base class of a data block (pymodbus's name and interface).

    A subclass must implement ``getValues`` and ``setValues``; it may override ``validate``,
    ``validate_write`` and ``reset``. Both value methods may return an ``ExceptionCode`` instead
    of a result; the server then answers with that exception.

    Attributes:
        address: The first address the block serves.
        values: The stored values (a list or a dict, depending on the block).
        default_value: What ``reset()`` restores.
    """

    values: _V
    address: int
    default_value: Any

    def validate(self, address: int, count: int = 1) -> bool:
        """Tell whether ``count`` values starting at ``address`` may be read.

        The base implementation accepts everything, so that a pymodbus 3.9+ style block (which
        implements only ``getValues``/``setValues`` and answers an invalid range by returning an
        exception code) keeps working.

        Args:
            address: The first block address.
            count: The number of values.

        Returns:
            True when the range is valid.
        """
        return True

    def validate_write(self, address: int, count: int = 1) -> bool:
        """Tell whether ``count`` values starting at ``address`` may be written.

        The default is the read rule, ``validate(address, count)``; a mutable sparse block
        overrides it because a write may create addresses.

        Args:
            address: The first block address.
            count: The number of values.

        Returns:
            True when a write of that range is allowed.
        """
        return self.validate(address, count)

    @abc.abstractmethod
    def getValues(self, address: int, count: int = 1) -> list[int] | ExceptionCode:
        """Return ``count`` values starting at ``address``.

        Args:
            address: The first block address.
            count: The number of values.

        Returns:
            The values, or an exception code for the server to answer.
        """

    @abc.abstractmethod
    def setValues(self, address: int, values: int | Sequence[int]) -> ExceptionCode | None:
        """Store ``values`` starting at ``address``.

        Args:
            address: The first block address.
            values: One value or a sequence of values.

        Returns:
            None on success, or an exception code for the server to answer.
        """

    def get_values(self, address: int, count: int = 1) -> list[int] | ExceptionCode:
        """Snake_case spelling of ``getValues`` (delegates to it, so overrides are honoured).

        Args:
            address: The first block address.
            count: The number of values.

        Returns:
            The values, or an exception code.
        """
        return self.getValues(address, count)

    def set_values(self, address: int, values: int | Sequence[int]) -> ExceptionCode | None:
        """Snake_case spelling of ``setValues`` (delegates to it, so overrides are honoured).

        Args:
            address: The first block address.
            values: One value or a sequence of values.

        Returns:
            None on success, or an exception code.
        """
        return self.setValues(address, values)

    async def async_getValues(self, address: int, count: int = 1) -> list[int] | ExceptionCode:
        """Awaitable ``getValues`` (pymodbus 3.x hook; the default calls ``getValues``).

        Args:
            address: The first block address.
            count: The number of values.

        Returns:
            The values, or an exception code.
        """
        return self.getValues(address, count)

    async def async_setValues(
        self, address: int, values: int | Sequence[int]
    ) -> ExceptionCode | None:
        """Awaitable ``setValues`` (pymodbus 3.x hook; the default calls ``setValues``).

        Args:
            address: The first block address.
            values: One value or a sequence of values.

        Returns:
            None on success, or an exception code.
        """
        return self.setValues(address, values)

    def reset(self) -> None:
        """Restore the default values (the base block has nothing to restore)."""

    def __str__(self) -> str:
        return f"DataStore({len(self.values)}, {self.default_value})"

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """Iterate over ``(address, value)`` pairs."""
        if isinstance(self.values, dict):
            return iter(sorted(self.values.items()))
        return enumerate(self.values, self.address)


class ModbusSequentialDataBlock(BaseModbusDataBlock[list[int]]):
    """A contiguous block of values starting at ``address``.

    Values are kept in a list (``block.values``, a :class:`ValueList`, which applications may
    read and modify directly); the list also keeps the registers packed, so the server answers a
    read of 125 registers with one slice of bytes. Assigning a plain list to ``block.values``
    works too; the server then packs every read.

    Args:
        address: The block address of the first value.
        values: The initial values; a single value (not iterable) means a one-entry block, as in
            pymodbus (``ModbusSequentialDataBlock(0, 0)`` holds one zero).

    Example:
        >>> block = ModbusSequentialDataBlock(0, [0] * 100)
        >>> block.setValues(10, [1, 2])
        >>> block.getValues(10, 3)
        [1, 2, 0]
    """

    def __init__(self, address: int, values: int | Sequence[int] | Any) -> None:
        self.address = address
        if hasattr(values, "__iter__"):
            self.values = ValueList(values)
        else:
            self.values = ValueList([values])
        # pymodbus uses the type of the first value: False for bool blocks, 0 otherwise.
        self.default_value = False if self.values and isinstance(self.values[0], bool) else 0

    @classmethod
    def create(cls) -> ModbusSequentialDataBlock:
        """Create a block covering the whole address space (65536 zeros from address 0).

        Returns:
            A new block; every call returns a new one.
        """
        return cls(0x00, [0x00] * FULL_ADDRESS_SPACE)

    def default(self, count: int, value: int = False) -> None:
        """Re-initialise the block to ``count`` copies of ``value`` at address 0 (pymodbus API).

        Args:
            count: The number of values.
            value: The value of each, which also becomes the default value.
        """
        self.default_value = value
        self.values = ValueList([value] * count)
        self.address = 0x00

    def reset(self) -> None:
        """Set every value back to ``default_value`` (in place)."""
        self.values[:] = [self.default_value] * len(self.values)

    def validate(self, address: int, count: int = 1) -> bool:
        """Tell whether ``[address, address + count)`` lies inside the block.

        Args:
            address: The first block address.
            count: The number of values (less than 1 is never valid).

        Returns:
            True when the whole range is inside the block.
        """
        start = address - self.address
        return start >= 0 and count >= 1 and start + count <= len(self.values)

    def getValues(self, address: int, count: int = 1) -> list[int] | ExceptionCode:
        """Return ``count`` values starting at ``address`` (one list slice).

        Args:
            address: The first block address.
            count: The number of values.

        Returns:
            A new list, or ILLEGAL_DATA_ADDRESS when the range leaves the block.
        """
        start = address - self.address
        end = start + count
        if start < 0 or count < 0 or end > len(self.values):
            return _ILLEGAL_ADDRESS
        return self.values[start:end]

    def setValues(self, address: int, values: int | Sequence[int]) -> ExceptionCode | None:
        """Store ``values`` starting at ``address``; all or nothing.

        Args:
            address: The first block address.
            values: One value or a sequence of values.

        Returns:
            None, or ILLEGAL_DATA_ADDRESS (nothing written) when the range leaves the block.
        """
        new = _as_list(values)
        start = address - self.address
        end = start + len(new)
        if start < 0 or end > len(self.values):
            return _ILLEGAL_ADDRESS
        self.values[start:end] = new
        return None


class ModbusSparseDataBlock(BaseModbusDataBlock[dict[int, int]]):
    """A block that serves only the addresses it holds (pymodbus 3.12 semantics).

    Args:
        values: ``None`` (empty), a sequence (addresses 0..n-1), or a mapping
            ``{address: value | sequence}`` where a sequence fills consecutive addresses.
        mutable: When True, writes to new addresses create them; when False, a write touching
            a missing address is refused with ILLEGAL_DATA_ADDRESS and nothing is written.

    Raises:
        ConfigurationError: ``values`` is not None, a mapping or an iterable.

    Example:
        >>> block = ModbusSparseDataBlock({10: [3, 5, 6, 8], 30: 1})
        >>> block.getValues(10, 2)
        [3, 5]
        >>> int(block.getValues(20))
        2
    """

    def __init__(self, values: Any = None, mutable: bool = True) -> None:
        self.address = 0
        self.values = {}
        self._process_values(values)
        self.mutable = mutable
        self.default_value = self.values.copy()

    @classmethod
    def create(cls, values: Any = None) -> ModbusSparseDataBlock:
        """Create a (mutable) sparse block.

        Args:
            values: As for the constructor.

        Returns:
            A new block.
        """
        return cls(values)

    def _process_values(self, values: Any) -> None:
        """Merge ``values`` (None, sequence or ``{address: value | sequence}``) into the block."""
        if values is None:
            return
        items: Iterable[tuple[Any, Any]]
        if isinstance(values, Mapping):
            items = values.items()
        elif hasattr(values, "__iter__") and not isinstance(values, str | bytes):
            items = enumerate(values)
        else:
            raise ConfigurationError("values for a sparse block must be a list or a dictionary")
        store = self.values
        for address, value in items:
            if isinstance(value, list | tuple):
                for offset, item in enumerate(value):
                    store[address + offset] = item
            else:
                store[address] = int(value)

    def reset(self) -> None:
        """Restore the values given at construction (or marked ``use_as_default``), in place."""
        self.values.clear()
        self.values.update(self.default_value)

    def validate(self, address: int, count: int = 1) -> bool:
        """Tell whether every address of ``[address, address + count)`` exists.

        Args:
            address: The first block address.
            count: The number of values (less than 1 is never valid).

        Returns:
            True when all the addresses are held by the block.
        """
        if count < 1:
            return False
        store = self.values
        return all(a in store for a in range(address, address + count))

    def validate_write(self, address: int, count: int = 1) -> bool:
        """Tell whether a write of ``count`` values at ``address`` is allowed.

        A mutable block accepts any non-negative range (the write creates missing addresses);
        an immutable one applies ``validate``.

        Args:
            address: The first block address.
            count: The number of values.

        Returns:
            True when the write is allowed.
        """
        if self.mutable:
            return address >= 0 and count >= 1
        return self.validate(address, count)

    def getValues(self, address: int, count: int = 1) -> list[int] | ExceptionCode:
        """Return ``count`` values starting at ``address``.

        Args:
            address: The first block address.
            count: The number of values.

        Returns:
            The values, or ILLEGAL_DATA_ADDRESS when an address is missing.
        """
        store = self.values
        try:
            return [store[a] for a in range(address, address + count)]
        except KeyError:
            return _ILLEGAL_ADDRESS

    def setValues(
        self,
        address: int,
        values: int | Sequence[int] | Mapping[int, int | Sequence[int]],
        use_as_default: bool = False,
    ) -> ExceptionCode | None:
        """Store values; all or nothing.

        Args:
            address: The first block address (ignored when ``values`` is a mapping).
            values: One value, a sequence of consecutive values, or a mapping
                ``{address: value | sequence}``.
            use_as_default: Also make the block's current contents the ``reset()`` defaults.

        Returns:
            None, or ILLEGAL_DATA_ADDRESS (nothing written) when the block is immutable and a
            target address is missing.
        """
        store = self.values
        if isinstance(values, Mapping):
            staged = ModbusSparseDataBlock(values)
            if not self.mutable and not staged.values.keys() <= store.keys():
                return _ILLEGAL_ADDRESS
            store.update(staged.values)
        else:
            new = _as_list(values)
            if not self.mutable and not all(
                a in store for a in range(address, address + len(new))
            ):
                return _ILLEGAL_ADDRESS
            store.update(zip(range(address, address + len(new)), new, strict=True))
        if use_as_default:
            self.default_value.update(store)
        return None
