"""Device identification objects (function 0x2B / MEI 0x0E), held per instance.

``ModbusDeviceIdentification`` keeps pymodbus's API (the seven named properties, item access by
object id, ``update``, ``summary``, iteration) but stores its objects in the instance: two
identities never share state (pymodbus keeps them in a class-level dict).

As in pymodbus, a value reads back exactly as it was set: a str stays a str, bytes stay bytes,
and an object that was never set reads ``""``. The values become bytes (a str encoded as UTF-8)
only on the way to the wire, through ``objects`` and ``get_object``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .._errors import ConfigurationError

__all__ = [
    "MAX_OBJECT_LENGTH",
    "OBJECT_NAMES",
    "ModbusDeviceIdentification",
]

# The longest object value that fits one response PDU: 253 bytes minus the 7 header bytes
# (function, MEI type, read code, conformity, more follows, next id, object count) minus the
# object's own id and length bytes.
MAX_OBJECT_LENGTH = 244

OBJECT_NAMES: tuple[str, ...] = (
    "VendorName",  # 0x00, basic (mandatory)
    "ProductCode",  # 0x01, basic (mandatory)
    "MajorMinorRevision",  # 0x02, basic (mandatory)
    "VendorUrl",  # 0x03, regular
    "ProductName",  # 0x04, regular
    "ModelName",  # 0x05, regular
    "UserApplicationName",  # 0x06, regular
)

_BASIC = range(0x00, 0x03)
_REGULAR_LAST = 0x06
_PRIVATE_FIRST = 0x80
_CATEGORY_LAST = {1: 0x02, 2: 0x7F, 3: 0xFF}  # read device id code → last object id
_UNSET = ""  # what an object that was never set reads (pymodbus's default)


def _check_object_id(object_id: Any) -> int:
    """Return ``object_id`` if it is 0x00..0x06 or 0x80..0xFF, else raise ConfigurationError."""
    if isinstance(object_id, bool) or not isinstance(object_id, int):
        raise ConfigurationError(f"object id {object_id!r} is not an int")
    if not (0 <= object_id <= _REGULAR_LAST or _PRIVATE_FIRST <= object_id <= 0xFF):
        raise ConfigurationError(
            f"object id {object_id:#04x} is reserved or out of range (0x00-0x06, 0x80-0xFF)"
        )
    return object_id


def _wire_bytes(value: str | bytes) -> bytes:
    """Return ``value`` as it goes on the wire: a str as UTF-8, bytes unchanged.

    The one place where an identification value becomes bytes.
    """
    return value.encode("utf-8") if isinstance(value, str) else value


def _check_value(object_id: int, value: Any) -> str | bytes:
    """Return ``value`` as it is stored (a str, or bytes-like as bytes), checking it.

    Raises:
        ConfigurationError: The UTF-8 form is longer than 244 bytes, or the str cannot be
            encoded as UTF-8 (a lone surrogate).
        TypeError: ``value`` is neither str nor bytes-like.
    """
    stored: str | bytes
    if isinstance(value, str):
        stored = value
    elif isinstance(value, bytes | bytearray | memoryview):
        stored = bytes(value)
    else:
        raise TypeError(f"object {object_id:#04x}: value must be str or bytes, not {value!r}")
    try:
        size = len(_wire_bytes(stored))
    except UnicodeEncodeError as exc:
        raise ConfigurationError(f"object {object_id:#04x}: {exc}") from None
    if size > MAX_OBJECT_LENGTH:
        raise ConfigurationError(
            f"object {object_id:#04x}: {size} bytes, longer than {MAX_OBJECT_LENGTH}"
        )
    return stored


class ModbusDeviceIdentification:
    """The identification objects of one device (pymodbus's name and API).

    Objects 0x00-0x02 are the basic category (mandatory; served even when empty), 0x03-0x06
    the regular category and 0x80-0xFF the extended (private) one; 0x07-0x7F are reserved and
    refused. A value reads back as it was set (a str as that str, bytes as those bytes; an
    object never set reads ``""``, as in pymodbus). On the wire (``objects``, ``get_object``)
    every value is bytes: a str is encoded as UTF-8. An empty value counts as absent there
    (except for the basic objects, served as ``b""``).

    Args:
        info: Objects by id, ``{0x00: "vendor", 0x80: b"private"}``.
        info_name: Objects by name, ``{"VendorName": "vendor"}``.

    Raises:
        ConfigurationError: A reserved object id, an unknown name or a value longer than 244
            bytes once encoded.
        TypeError: A value that is neither str nor bytes.

    Example:
        >>> identity = ModbusDeviceIdentification(info_name={"VendorName": "Acme"})
        >>> identity.ProductCode = "AC-1"
        >>> identity.VendorName
        'Acme'
        >>> f"{identity.VendorName} {identity.ProductCode}"
        'Acme AC-1'
        >>> identity.MajorMinorRevision
        ''
        >>> identity.objects(1)
        {0: b'Acme', 1: b'AC-1', 2: b''}
    """

    __slots__ = ("_objects",)

    @property
    def VendorName(self) -> str | bytes:
        """Object 0x00, VendorName, as set (``""`` when not set)."""
        return self._objects.get(0x00, _UNSET)

    @VendorName.setter
    def VendorName(self, value: str | bytes) -> None:
        self[0x00] = value

    @property
    def ProductCode(self) -> str | bytes:
        """Object 0x01, ProductCode, as set (``""`` when not set)."""
        return self._objects.get(0x01, _UNSET)

    @ProductCode.setter
    def ProductCode(self, value: str | bytes) -> None:
        self[0x01] = value

    @property
    def MajorMinorRevision(self) -> str | bytes:
        """Object 0x02, MajorMinorRevision, as set (``""`` when not set)."""
        return self._objects.get(0x02, _UNSET)

    @MajorMinorRevision.setter
    def MajorMinorRevision(self, value: str | bytes) -> None:
        self[0x02] = value

    @property
    def VendorUrl(self) -> str | bytes:
        """Object 0x03, VendorUrl, as set (``""`` when not set)."""
        return self._objects.get(0x03, _UNSET)

    @VendorUrl.setter
    def VendorUrl(self, value: str | bytes) -> None:
        self[0x03] = value

    @property
    def ProductName(self) -> str | bytes:
        """Object 0x04, ProductName, as set (``""`` when not set)."""
        return self._objects.get(0x04, _UNSET)

    @ProductName.setter
    def ProductName(self, value: str | bytes) -> None:
        self[0x04] = value

    @property
    def ModelName(self) -> str | bytes:
        """Object 0x05, ModelName, as set (``""`` when not set)."""
        return self._objects.get(0x05, _UNSET)

    @ModelName.setter
    def ModelName(self, value: str | bytes) -> None:
        self[0x05] = value

    @property
    def UserApplicationName(self) -> str | bytes:
        """Object 0x06, UserApplicationName, as set (``""`` when not set)."""
        return self._objects.get(0x06, _UNSET)

    @UserApplicationName.setter
    def UserApplicationName(self, value: str | bytes) -> None:
        self[0x06] = value

    def __init__(
        self,
        info: Mapping[int, str | bytes] | None = None,
        info_name: Mapping[str, str | bytes] | None = None,
    ) -> None:
        self._objects: dict[int, str | bytes] = {}
        if info_name is not None:
            for name, value in info_name.items():
                if name not in OBJECT_NAMES:
                    raise ConfigurationError(f"unknown identification object name {name!r}")
                self[OBJECT_NAMES.index(name)] = value
        if info is not None:
            self.update(info)

    def __getitem__(self, object_id: int) -> str | bytes:
        """Return the value of ``object_id`` as it was set (``""`` when not set).

        Raises:
            ConfigurationError: ``object_id`` is reserved or out of range.
        """
        return self._objects.get(_check_object_id(object_id), _UNSET)

    def __setitem__(self, object_id: int, value: str | bytes) -> None:
        """Set the value of ``object_id``; it reads back as given (bytes-like as bytes).

        An empty value (``""`` or ``b""``) makes the object absent on the wire.

        Raises:
            ConfigurationError: Reserved id, or a value longer than 244 bytes once encoded.
            TypeError: A value that is neither str nor bytes.
        """
        object_id = _check_object_id(object_id)
        self._objects[object_id] = _check_value(object_id, value)

    def __delitem__(self, object_id: int) -> None:
        """Remove ``object_id`` (no error when it is not set)."""
        self._objects.pop(_check_object_id(object_id), None)

    def __iter__(self) -> Iterator[tuple[int, str | bytes]]:
        """Iterate over ``(object_id, value)`` pairs in id order, values as set.

        The basic objects always come (``""`` when not set), the others when not empty.
        """
        objects = self._objects
        pairs = [(object_id, objects.get(object_id, _UNSET)) for object_id in _BASIC]
        pairs += [(oid, objects[oid]) for oid in sorted(objects) if oid > 0x02 and objects[oid]]
        return iter(pairs)

    def __str__(self) -> str:
        return "DeviceIdentity"

    def __repr__(self) -> str:
        return f"ModbusDeviceIdentification({dict(self)!r})"

    def update(
        self,
        value: ModbusDeviceIdentification
        | Mapping[int, str | bytes]
        | Iterable[tuple[int, str | bytes]],
    ) -> None:
        """Set several objects from another identity, a mapping or ``(id, value)`` pairs.

        From another identity only its non-empty objects are copied; from a mapping or pairs
        every value is set as given (an empty one makes the object absent on the wire).

        Args:
            value: Where to copy the objects from.

        Raises:
            ConfigurationError: A reserved id or a value too long.
        """
        items: Iterable[tuple[int, str | bytes]]
        if isinstance(value, ModbusDeviceIdentification):
            items = [(oid, data) for oid, data in value._objects.items() if data]
        elif isinstance(value, Mapping):
            items = value.items()
        else:
            items = value
        for object_id, data in items:
            self[object_id] = data

    def summary(self) -> dict[str, str | bytes]:
        """Return the seven named objects by name, values as set.

        Returns:
            ``{"VendorName": "...", ...}`` in object id order, ``""`` for an object not set.
        """
        objects = self._objects
        return {name: objects.get(index, _UNSET) for index, name in enumerate(OBJECT_NAMES)}

    def get_object(self, object_id: int) -> bytes | None:
        """Return one object encoded for the wire (individual access, read device id code 04).

        Args:
            object_id: Any object id.

        Returns:
            The value as bytes (a str encoded as UTF-8); ``b""`` for an unset or empty basic
            object; None when the object does not exist or is empty (the executor then answers
            ILLEGAL DATA ADDRESS).
        """
        value = self._objects.get(object_id)
        if value:
            return _wire_bytes(value)
        return b"" if object_id in _BASIC else None

    def objects(self, read_code: int) -> dict[int, bytes]:
        """Return the objects of a stream access category encoded for the wire, sorted by id.

        This is what the server sends for 0x2B/0x0E and builds 0x11's server id from: every
        value is bytes, a str encoded as UTF-8.

        Args:
            read_code: 1 basic (0x00-0x02), 2 regular (0x00-0x7F), 3 extended (0x00-0xFF).

        Returns:
            The basic objects (always, ``b""`` when unset or empty) and the non-empty objects
            of the category.

        Raises:
            ConfigurationError: ``read_code`` is not 1, 2 or 3.
        """
        last = _CATEGORY_LAST.get(read_code)
        if last is None:
            raise ConfigurationError(f"read device id code {read_code!r} is not 1, 2 or 3")
        objects = self._objects
        result = {oid: _wire_bytes(objects.get(oid, b"")) for oid in _BASIC}
        for object_id in sorted(objects):
            value = objects[object_id]
            if 0x02 < object_id <= last and value:
                result[object_id] = _wire_bytes(value)
        return result

    @property
    def conformity_level(self) -> int:
        """The conformity level byte, 0x81, 0x82 or 0x83 (individual access supported).

        0x83 when a private object is set (not empty), 0x82 when a regular one is, 0x81
        otherwise.
        """
        present = [object_id for object_id, value in self._objects.items() if value]
        if any(object_id >= _PRIVATE_FIRST for object_id in present):
            return 0x83
        if any(object_id > 0x02 for object_id in present):
            return 0x82
        return 0x81
