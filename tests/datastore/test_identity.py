from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymodbus
import pytest

from trio_modbus._errors import ConfigurationError
from trio_modbus.datastore import (
    ModbusDeviceContext,
    ModbusDeviceIdentification,
    ModbusSequentialDataBlock,
    ModbusServerContext,
)
from trio_modbus.datastore.identity import MAX_OBJECT_LENGTH, OBJECT_NAMES
from trio_modbus.service import DatastoreService, RequestContext


def test_named_properties_return_the_values_as_set() -> None:
    identity = ModbusDeviceIdentification()
    identity.VendorName = "PyModbus"
    identity.ProductCode = b"PM"
    identity.VendorUrl = "http://github.com/riptideio/pymodbus/"
    identity.ProductName = "PyModbus Server"
    identity.ModelName = "PyModbus Server"
    identity.MajorMinorRevision = "3.11.1"
    identity.UserApplicationName = "app"
    assert identity.VendorName == "PyModbus"
    assert identity[0x01] == b"PM"
    assert identity[0x02] == "3.11.1"
    assert identity[0x06] == "app"
    assert identity.summary() == {
        "VendorName": "PyModbus",
        "ProductCode": b"PM",
        "MajorMinorRevision": "3.11.1",
        "VendorUrl": "http://github.com/riptideio/pymodbus/",
        "ProductName": "PyModbus Server",
        "ModelName": "PyModbus Server",
        "UserApplicationName": "app",
    }


def test_utf8_encoding_only_on_the_wire() -> None:
    identity = ModbusDeviceIdentification(info={0x80: "Zürich"})
    assert identity[0x80] == "Zürich"
    assert identity.objects(3)[0x80] == "Zürich".encode()
    assert identity.get_object(0x80) == "Zürich".encode()


def test_per_instance_storage() -> None:
    a = ModbusDeviceIdentification(info_name={"VendorName": "A"})
    b = ModbusDeviceIdentification()
    assert a.VendorName == "A"
    assert b.VendorName == ""
    b.VendorName = "B"
    assert a.VendorName == "A"
    assert not isinstance(vars(ModbusDeviceIdentification).get("_objects"), dict)


def test_reserved_and_out_of_range_ids_refused() -> None:
    identity = ModbusDeviceIdentification()
    for bad in (0x07, 0x08, 0x50, 0x7F, 0x100, -1):
        with pytest.raises(ConfigurationError):
            identity[bad] = "x"
        with pytest.raises(ConfigurationError):
            identity[bad]
        assert identity.get_object(bad) is None
    with pytest.raises(ConfigurationError):
        ModbusDeviceIdentification(info={0x07: "x"})
    with pytest.raises(ConfigurationError):
        ModbusDeviceIdentification(info_name={"Vendor": "x"})
    identity[0x06] = "ok"
    identity[0x80] = "ok"
    identity[0xFF] = "ok"


def test_value_length_and_type() -> None:
    identity = ModbusDeviceIdentification()
    identity[0x80] = b"x" * MAX_OBJECT_LENGTH
    with pytest.raises(ConfigurationError):
        identity[0x80] = b"x" * (MAX_OBJECT_LENGTH + 1)
    with pytest.raises(ConfigurationError):
        identity.VendorName = "é" * 123  # 246 bytes in UTF-8
    with pytest.raises(TypeError):
        identity[0x80] = 5  # type: ignore[assignment]
    assert MAX_OBJECT_LENGTH == 253 - 7 - 2


def test_categories() -> None:
    identity = ModbusDeviceIdentification(
        info={0x00: "V", 0x01: "P", 0x04: "Name", 0x81: "priv", 0x80: "first"}
    )
    assert identity.objects(1) == {0: b"V", 1: b"P", 2: b""}
    assert identity.objects(2) == {0: b"V", 1: b"P", 2: b"", 4: b"Name"}
    assert identity.objects(3) == {
        0: b"V",
        1: b"P",
        2: b"",
        4: b"Name",
        0x80: b"first",
        0x81: b"priv",
    }
    assert list(identity.objects(3)) == [0, 1, 2, 4, 0x80, 0x81]
    for bad in (0, 4, 5):
        with pytest.raises(ConfigurationError):
            identity.objects(bad)


def test_iteration_and_get_object() -> None:
    identity = ModbusDeviceIdentification(info={0x03: "url", 0x90: "x"})
    assert list(identity) == [(0, ""), (1, ""), (2, ""), (3, "url"), (0x90, "x")]
    assert identity.get_object(0x00) == b""
    assert identity.get_object(0x03) == b"url"
    assert identity.get_object(0x04) is None
    assert identity.get_object(0x91) is None


def test_empty_value_is_absent_on_the_wire_and_delete() -> None:
    identity = ModbusDeviceIdentification(info={0x05: "m", 0x85: "p"})
    identity[0x05] = ""
    assert identity[0x05] == ""
    assert identity.get_object(0x05) is None
    assert identity.conformity_level == 0x83
    assert list(identity) == [(0, ""), (1, ""), (2, ""), (0x85, "p")]
    del identity[0x85]
    del identity[0x85]
    assert identity.objects(3) == {0: b"", 1: b"", 2: b""}


def test_update_from_mapping_pairs_and_identity() -> None:
    identity = ModbusDeviceIdentification()
    identity.update({0x00: "V"})
    identity.update([(0x01, "P")])
    other = ModbusDeviceIdentification(info={0x02: "1.0", 0x80: "x"})
    identity.update(other)
    assert identity.objects(3) == {0: b"V", 1: b"P", 2: b"1.0", 0x80: b"x"}
    with pytest.raises(ConfigurationError):
        identity.update({0x10: "r"})


def test_conformity_level() -> None:
    identity = ModbusDeviceIdentification(info={0x00: "V"})
    assert identity.conformity_level == 0x81
    identity.ModelName = "M"
    assert identity.conformity_level == 0x82
    identity[0xA0] = "p"
    assert identity.conformity_level == 0x83


def test_str_and_repr() -> None:
    identity = ModbusDeviceIdentification()
    assert str(identity) == "DeviceIdentity"
    assert "ModbusDeviceIdentification" in repr(identity)


# -- values read back as set (pymodbus's behaviour); bytes only on the wire ----------------------


def test_str_reads_back_as_the_same_str() -> None:
    identity = ModbusDeviceIdentification()
    identity.VendorName = "Acme"
    identity[0x80] = "Zürich"
    for value, expected in ((identity.VendorName, "Acme"), (identity[0x00], "Acme"),
                            (identity[0x80], "Zürich")):  # fmt: skip
        assert type(value) is str
        assert value == expected


def test_bytes_read_back_as_bytes() -> None:
    identity = ModbusDeviceIdentification(info={0x81: b"\xff\x00raw"})
    identity.ProductCode = b"PC"
    identity[0x80] = bytearray(b"ba")  # type: ignore[assignment]
    assert identity.ProductCode == b"PC" and type(identity.ProductCode) is bytes
    assert identity[0x01] == b"PC"
    assert identity[0x81] == b"\xff\x00raw"
    assert identity[0x80] == b"ba" and type(identity[0x80]) is bytes
    identity.ModelName = b""
    assert identity.ModelName == b""


def test_unset_objects_read_empty_str() -> None:
    identity = ModbusDeviceIdentification()
    for name in OBJECT_NAMES:
        assert getattr(identity, name) == ""
        assert type(getattr(identity, name)) is str
    for object_id in (0x00, 0x03, 0x06, 0x80, 0xFF):
        assert identity[object_id] == ""
    assert identity.summary() == dict.fromkeys(OBJECT_NAMES, "")
    del identity[0x80]
    assert identity[0x80] == ""


def test_values_format_and_compare_as_str() -> None:
    identity = ModbusDeviceIdentification(
        info_name={"VendorName": "Acme", "ProductCode": "AC-1", "MajorMinorRevision": "1.2"}
    )
    # (mypy flags formatting a ``str | bytes`` value: a bytes value would print as b'...')
    text = f"{identity.VendorName} {identity.ProductCode} v{identity.MajorMinorRevision}"  # type: ignore[str-bytes-safe]
    assert text == "Acme AC-1 v1.2"
    assert "%s/%s" % (identity.VendorName, identity[0x01]) == "Acme/AC-1"  # type: ignore[str-bytes-safe]  # noqa: UP031
    assert identity.ProductCode != b"AC-1"
    assert identity.VendorName == "Acme"
    assert identity.MajorMinorRevision.startswith("1.")  # type: ignore[arg-type]
    assert "-".join(str(v) for v in identity.summary().values() if v) == "Acme-AC-1-1.2"
    assert repr(identity) == "ModbusDeviceIdentification({0: 'Acme', 1: 'AC-1', 2: '1.2'})"


def test_validation_uses_the_encoded_length() -> None:
    identity = ModbusDeviceIdentification()
    identity.VendorName = "é" * 122  # 244 bytes in UTF-8
    assert identity.VendorName == "é" * 122
    with pytest.raises(ConfigurationError):
        identity.VendorName = "\ud800"  # a lone surrogate has no UTF-8 form
    with pytest.raises(TypeError):
        identity.VendorName = 1.5  # type: ignore[assignment]
    assert identity.VendorName == "é" * 122


def _wire_service(identity: ModbusDeviceIdentification) -> DatastoreService:
    device = ModbusDeviceContext(
        co=ModbusSequentialDataBlock(0, [0]),
        di=ModbusSequentialDataBlock(0, [0]),
        hr=ModbusSequentialDataBlock(0, [0]),
        ir=ModbusSequentialDataBlock(0, [0]),
    )
    context = ModbusServerContext(devices={1: device}, single=False)
    return DatastoreService(context, identity=identity)


async def test_wire_answers_carry_utf8_bytes() -> None:
    identity = ModbusDeviceIdentification(info_name={"VendorName": "Zürich", "ProductCode": "ZC"})
    identity.MajorMinorRevision = b"\x01\x02"
    identity[0x80] = "µ"
    assert identity.VendorName == "Zürich"  # still the str after the setup
    svc = _wire_service(identity)
    ctx = RequestContext(unit_id=1)
    vendor = "Zürich".encode()
    basic = bytes((0x00, len(vendor))) + vendor + b"\x01\x02ZC" + b"\x02\x02\x01\x02"
    # 0x2B/0x0E basic stream access: conformity 0x83 (a private object is set).
    assert await svc.process(b"\x2b\x0e\x01\x00", ctx) == b"\x2b\x0e\x01\x83\x00\x00\x03" + basic
    # extended stream access: the private str object as UTF-8 too.
    assert await svc.process(b"\x2b\x0e\x03\x00", ctx) == (
        b"\x2b\x0e\x03\x83\x00\x00\x04" + basic + b"\x80\x02" + "µ".encode()
    )
    # individual access
    assert await svc.process(b"\x2b\x0e\x04\x80", ctx) == (
        b"\x2b\x0e\x04\x83\x00\x00\x01\x80\x02" + "µ".encode()
    )
    # 0x11 report server id: the basic objects joined by "-", then the run indicator.
    server_id = vendor + b"-ZC-\x01\x02"
    assert await svc.process(b"\x11", ctx) == (
        b"\x11" + bytes((len(server_id) + 1,)) + server_id + b"\xff"
    )


# -- side by side with pymodbus --------------------------------------------------------------


@pytest.fixture
def pymodbus_identity(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """pymodbus's class with fresh defaults (it keeps its objects in one class-level dict)."""
    cls = pymodbus.ModbusDeviceIdentification
    monkeypatch.setattr(cls, "stat_data", dict.fromkeys(range(0x09), ""))
    yield cls


def test_side_by_side_with_pymodbus(pymodbus_identity: Any) -> None:
    info_name: dict[str, str | bytes] = {"VendorName": "Acme", "ProductCode": b"AC"}
    ours = ModbusDeviceIdentification(info={0x80: "priv"}, info_name=info_name)
    theirs = pymodbus_identity(info={0x80: "priv"}, info_name=info_name)

    def same(read: Any) -> None:
        a, b = read(ours), read(theirs)
        assert (a, type(a)) == (b, type(b))

    # set in the constructor: str, bytes; unset
    for name in OBJECT_NAMES:
        same(lambda i, name=name: getattr(i, name))
    for object_id in (0x00, 0x01, 0x02, 0x05, 0x80):
        same(lambda i, object_id=object_id: i[object_id])
    same(lambda i: i.summary())
    # set through the properties and item access
    for target in (ours, theirs):
        target.MajorMinorRevision = "1.0"
        target.VendorUrl = b"http://x"
        target[0x06] = "app"
        target[0x81] = b"\x00\xff"
        target.update({0x04: "Widget"})
    for name in OBJECT_NAMES:
        same(lambda i, name=name: getattr(i, name))
    for object_id in (0x03, 0x04, 0x06, 0x80, 0x81):
        same(lambda i, object_id=object_id: i[object_id])
    same(lambda i: i.summary())
    same(lambda i: f"{i.VendorName}/{i.ProductName}")
    same(lambda i: str(i))
    # iteration: every pair we yield is pymodbus's (it also yields reserved and unset ids)
    assert set(ours) <= set(theirs)
