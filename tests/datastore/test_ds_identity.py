import pytest

from trio_modbus._errors import ConfigurationError
from trio_modbus.datastore import ModbusDeviceIdentification
from trio_modbus.datastore.identity import MAX_OBJECT_LENGTH


def test_named_properties_store_bytes() -> None:
    identity = ModbusDeviceIdentification()
    identity.VendorName = "PyModbus"
    identity.ProductCode = b"PM"
    identity.VendorUrl = "http://github.com/riptideio/pymodbus/"
    identity.ProductName = "PyModbus Server"
    identity.ModelName = "PyModbus Server"
    identity.MajorMinorRevision = "3.11.1"
    identity.UserApplicationName = "app"
    assert identity.VendorName == b"PyModbus"
    assert identity[0x01] == b"PM"
    assert identity[0x02] == b"3.11.1"
    assert identity[0x06] == b"app"
    assert identity.summary() == {
        "VendorName": b"PyModbus",
        "ProductCode": b"PM",
        "MajorMinorRevision": b"3.11.1",
        "VendorUrl": b"http://github.com/riptideio/pymodbus/",
        "ProductName": b"PyModbus Server",
        "ModelName": b"PyModbus Server",
        "UserApplicationName": b"app",
    }


def test_utf8_encoding() -> None:
    identity = ModbusDeviceIdentification(info={0x80: "Zürich"})
    assert identity[0x80] == "Zürich".encode()


def test_per_instance_storage() -> None:
    a = ModbusDeviceIdentification(info_name={"VendorName": "A"})
    b = ModbusDeviceIdentification()
    assert a.VendorName == b"A"
    assert b.VendorName == b""
    b.VendorName = "B"
    assert a.VendorName == b"A"
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
    assert list(identity) == [(0, b""), (1, b""), (2, b""), (3, b"url"), (0x90, b"x")]
    assert identity.get_object(0x00) == b""
    assert identity.get_object(0x03) == b"url"
    assert identity.get_object(0x04) is None
    assert identity.get_object(0x91) is None


def test_empty_value_removes_and_delete() -> None:
    identity = ModbusDeviceIdentification(info={0x05: "m", 0x85: "p"})
    identity[0x05] = ""
    assert identity.get_object(0x05) is None
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
