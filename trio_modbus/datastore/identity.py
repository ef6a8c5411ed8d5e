"""Device identification objects (function 0x2B / MEI 0x0E), held per instance.

``ModbusDeviceIdentification`` keeps pymodbus's API (the seven named properties, item access by
object id, ``update``, ``summary``, iteration) but stores its objects in the instance: two
identities never share state (pymodbus keeps them in a class-level dict).
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


def _check_object_id(object_id: Any) -> int:
    """Return ``object_id`` if it is 0x00..0x06 or 0x80..0xFF, else raise ConfigurationError."""
    if isinstance(object_id, bool) or not isinstance(object_id, int):
        raise ConfigurationError(f"object id {object_id!r} is not an int")
    if not (0 <= object_id <= _REGULAR_LAST or _PRIVATE_FIRST <= object_id <= 0xFF):
        raise ConfigurationError(
            f"object id {object_id:#04x} is reserved or out of range (0x00-0x06, 0x80-0xFF)"
        )
    return object_id


def _as_bytes(object_id: int, value: Any) -> bytes:
    """Return ``value`` (str → UTF-8, bytes-like) as bytes, checking its length."""
    if isinstance(value, str):
        data = value.encode("utf-8")
    elif isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
    else:
        raise TypeError(f"object {object_id:#04x}: value must be str or bytes, not {value!r}")
    if len(data) > MAX_OBJECT_LENGTH:
        raise ConfigurationError(
            f"object {object_id:#04x}: {len(data)} bytes, longer than {MAX_OBJECT_LENGTH}"
        )
    return data


class ModbusDeviceIdentification:
    """The identification objects of one device (pymodbus's name and API).

    Objects 0x00-0x02 are the basic category (mandatory; served even when empty), 0x03-0x06
    the regular category and 0x80-0xFF the extended (private) one; 0x07-0x7F are reserved and
    refused. Values are stored as bytes: a str is encoded as UTF-8. An empty value counts as
    absent (except for the basic objects).

    Args:
        info: Objects by id, ``{0x00: "vendor", 0x80: b"private"}``.
        info_name: Objects by name, ``{"VendorName": "vendor"}``.

    Raises:
        ConfigurationError: A reserved object id, an unknown name or a value longer than 244
            bytes.
        TypeError: A value that is neither str nor bytes.

    Example:
        >>> identity = ModbusDeviceIdentification(info_name={"VendorName": "Acme"})
        >>> identity.ProductCode = "AC-1"
        >>> identity.objects(1)
        {0: b'Acme', 1: b'AC-1', 2: b''}
    """

    __slots__ = ("_objects",)

    @property
    def VendorName(self) -> bytes:
        """Object 0x00, VendorName (``b""`` when not set; assign str or bytes)."""
        return self._objects.get(0x00, b"")

    @VendorName.setter
    def VendorName(self, value: str | bytes) -> None:
        self[0x00] = value

    @property
    def ProductCode(self) -> bytes:
        """Object 0x01, ProductCode (``b""`` when not set; assign str or bytes)."""
        return self._objects.get(0x01, b"")

    @ProductCode.setter
    def ProductCode(self, value: str | bytes) -> None:
        self[0x01] = value

    @property
    def MajorMinorRevision(self) -> bytes:
        """Object 0x02, MajorMinorRevision (``b""`` when not set; assign str or bytes)."""
        return self._objects.get(0x02, b"")

    @MajorMinorRevision.setter
    def MajorMinorRevision(self, value: str | bytes) -> None:
        self[0x02] = value

    @property
    def VendorUrl(self) -> bytes:
        """Object 0x03, VendorUrl (``b""`` when not set; assign str or bytes)."""
        return self._objects.get(0x03, b"")

    @VendorUrl.setter
    def VendorUrl(self, value: str | bytes) -> None:
        self[0x03] = value

    @property
    def ProductName(self) -> bytes:
        """Object 0x04, ProductName (``b""`` when not set; assign str or bytes)."""
        return self._objects.get(0x04, b"")

    @ProductName.setter
    def ProductName(self, value: str | bytes) -> None:
        self[0x04] = value

    @property
    def ModelName(self) -> bytes:
        """Object 0x05, ModelName (``b""`` when not set; assign str or bytes)."""
        return self._objects.get(0x05, b"")

    @ModelName.setter
    def ModelName(self, value: str | bytes) -> None:
        self[0x05] = value

    @property
    def UserApplicationName(self) -> bytes:
        """Object 0x06, UserApplicationName (``b""`` when not set; assign str or bytes)."""
        return self._objects.get(0x06, b"")

    @UserApplicationName.setter
    def UserApplicationName(self, value: str | bytes) -> None:
        self[0x06] = value

    def __init__(
        self,
        info: Mapping[int, str | bytes] | None = None,
        info_name: Mapping[str, str | bytes] | None = None,
    ) -> None:
        self._objects: dict[int, bytes] = {}
        if info_name is not None:
            for name, value in info_name.items():
                if name not in OBJECT_NAMES:
                    raise ConfigurationError(f"unknown identification object name {name!r}")
                self[OBJECT_NAMES.index(name)] = value
        if info is not None:
            self.update(info)

    def __getitem__(self, object_id: int) -> bytes:
        """Return the value of ``object_id`` (``b""`` when not set).

        Raises:
            ConfigurationError: ``object_id`` is reserved or out of range.
        """
        return self._objects.get(_check_object_id(object_id), b"")

    def __setitem__(self, object_id: int, value: str | bytes) -> None:
        """Set the value of ``object_id`` (str is encoded as UTF-8; ``""`` removes it).

        Raises:
            ConfigurationError: Reserved id, or a value longer than 244 bytes.
            TypeError: A value that is neither str nor bytes.
        """
        object_id = _check_object_id(object_id)
        data = _as_bytes(object_id, value)
        if data:
            self._objects[object_id] = data
        else:
            self._objects.pop(object_id, None)

    def __delitem__(self, object_id: int) -> None:
        """Remove ``object_id`` (no error when it is not set)."""
        self._objects.pop(_check_object_id(object_id), None)

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        """Iterate over ``(object_id, value)`` pairs in id order (basic objects always)."""
        return iter(self.objects(3).items())

    def __str__(self) -> str:
        return "DeviceIdentity"

    def __repr__(self) -> str:
        return f"ModbusDeviceIdentification({self.objects(3)!r})"

    def update(
        self,
        value: ModbusDeviceIdentification
        | Mapping[int, str | bytes]
        | Iterable[tuple[int, str | bytes]],
    ) -> None:
        """Set several objects from another identity, a mapping or ``(id, value)`` pairs.

        From another identity only its set objects are copied; from a mapping or pairs an
        empty value removes the object.

        Args:
            value: Where to copy the objects from.

        Raises:
            ConfigurationError: A reserved id or a value too long.
        """
        items: Iterable[tuple[int, str | bytes]]
        if isinstance(value, ModbusDeviceIdentification):
            items = list(value._objects.items())
        elif isinstance(value, Mapping):
            items = value.items()
        else:
            items = value
        for object_id, data in items:
            self[object_id] = data

    def summary(self) -> dict[str, bytes]:
        """Return the seven named objects by name.

        Returns:
            ``{"VendorName": b"...", ...}`` in object id order.
        """
        objects = self._objects
        return {name: objects.get(index, b"") for index, name in enumerate(OBJECT_NAMES)}

    def get_object(self, object_id: int) -> bytes | None:
        """Return one object for individual access (read device id code 04).

        Args:
            object_id: Any object id.

        Returns:
            The value; ``b""`` for an unset basic object; None when the object does not exist
            (the executor then answers ILLEGAL DATA ADDRESS).
        """
        value = self._objects.get(object_id)
        if value is None and object_id in _BASIC:
            return b""
        return value

    def objects(self, read_code: int) -> dict[int, bytes]:
        """Return the objects of a stream access category, sorted by id.

        Args:
            read_code: 1 basic (0x00-0x02), 2 regular (0x00-0x7F), 3 extended (0x00-0xFF).

        Returns:
            The basic objects (always, ``b""`` when unset) and the set objects of the
            category.

        Raises:
            ConfigurationError: ``read_code`` is not 1, 2 or 3.
        """
        last = _CATEGORY_LAST.get(read_code)
        if last is None:
            raise ConfigurationError(f"read device id code {read_code!r} is not 1, 2 or 3")
        objects = self._objects
        result = {object_id: objects.get(object_id, b"") for object_id in _BASIC}
        for object_id in sorted(objects):
            if 0x02 < object_id <= last:
                result[object_id] = objects[object_id]
        return result

    @property
    def conformity_level(self) -> int:
        """The conformity level byte: 0x81, 0x82 or 0x83 (individual access supported).

        0x83 when a private object is set, 0x82 when a regular one is, 0x81 otherwise.
        """
        objects = self._objects
        if any(object_id >= _PRIVATE_FIRST for object_id in objects):
            return 0x83
        if any(object_id > 0x02 for object_id in objects):
            return 0x82
        return 0x81
