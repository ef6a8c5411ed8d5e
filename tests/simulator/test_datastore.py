"""The simulated device on the wire (through the service) and its typed access.

The tests named after a pymodbus defect fail on pymodbus's simulator (each says how).
"""

from __future__ import annotations

import math

import pytest

from trio_modbus.simulator import Cell, CellType, decode_value, encode_value

from ._support import ask, make_data, service_for

# -- layout -----------------------------------------------------------------------------------


async def test_shared_blocks_one_array_for_all_tables() -> None:
    data = make_data(uint16=[{"addr": 2, "value": 0x8001}], write=[2])
    service = service_for(data)
    assert await ask(service, "03 0002 0001") == bytes.fromhex("03 02 8001")
    assert await ask(service, "04 0002 0001") == bytes.fromhex("04 02 8001")
    # Coil N is bit N % 16 of cell N // 16, bit 0 the least significant.
    assert await ask(service, "01 0020 0010") == bytes.fromhex("01 02 01 80")
    assert await ask(service, "02 0020 0001") == bytes.fromhex("02 01 01")
    assert await ask(service, "02 002f 0001") == bytes.fromhex("02 01 01")
    assert await ask(service, "02 002e 0001") == bytes.fromhex("02 01 00")


async def test_separate_blocks_offsets() -> None:
    setup = {"shared blocks": False, "co size": 2, "di size": 3, "ir size": 4, "hr size": 5}
    data = make_data(setup=setup, uint16=[[0, 13]])
    for index in range(14):
        data.cells[index].value = index
    assert data.device.offsets == {"co": 0, "di": 2, "ir": 5, "hr": 9}
    assert data.register_count == 14
    service = service_for(data)
    assert await ask(service, "03 0000 0005") == bytes.fromhex("03 0a 0009 000a 000b 000c 000d")
    assert await ask(service, "04 0000 0004") == bytes.fromhex("04 08 0005 0006 0007 0008")
    assert await ask(service, "02 0000 0010") == bytes.fromhex("02 02 02 00")  # cell 2 = 2
    assert await ask(service, "01 0010 0001") == bytes.fromhex("01 01 01")  # cell 1 = 1
    assert list(data.table_cells("ir")) == [5, 6, 7, 8]


async def test_separate_blocks_out_of_table_range_answers_02() -> None:
    """pymodbus reads on into the next table (coils past their block read discrete inputs)."""
    setup = {"shared blocks": False, "co size": 1, "di size": 1, "ir size": 1, "hr size": 1}
    data = make_data(setup=setup, uint16=[[0, 3]])
    service = service_for(data)
    assert await ask(service, "01 0000 0010") == bytes.fromhex("01 02 00 00")
    assert await ask(service, "01 0010 0001") == bytes.fromhex("81 02")
    assert await ask(service, "04 0000 0002") == bytes.fromhex("84 02")
    assert await ask(service, "03 0001 0001") == bytes.fromhex("83 02")


async def test_big_endian_words_and_string_packing() -> None:
    data = make_data(
        uint32=[{"addr": [0, 1], "value": 0x12345678}],
        float32=[{"addr": [2, 3], "value": 1.5}],
        float64=[{"addr": [4, 7], "value": -2.25}],
        string=[{"addr": [8, 10], "value": "AbC"}],
        int16=[{"addr": 11, "value": -2}],
    )
    service = service_for(data)
    assert await ask(service, "03 0000 0004") == bytes.fromhex("03 08 1234 5678 3fc0 0000")
    assert await ask(service, "03 0004 0004") == bytes.fromhex("03 08 c002 0000 0000 0000")
    # Two characters per register, the first in the high byte, padded with spaces.
    assert await ask(service, "03 0008 0003") == b"\x03\x06AbC   "
    assert await ask(service, "03 000b 0001") == bytes.fromhex("03 02 fffe")
    assert data.get(8, "string") == "AbC   "
    assert data.get(0) == 0x12345678  # the cell's own type
    assert data.get(4) == -2.25


# -- access rules -----------------------------------------------------------------------------


async def test_write_only_where_allowed() -> None:
    data = make_data(uint16=[[0, 5]], bits=[6], write=[[1, 2], 6])
    service = service_for(data)
    assert await ask(service, "06 0001 0007") == bytes.fromhex("06 0001 0007")
    assert await ask(service, "06 0000 0007") == bytes.fromhex("86 02")
    assert await ask(service, "05 0060 ff00") == bytes.fromhex("05 0060 ff00")
    assert await ask(service, "05 0050 ff00") == bytes.fromhex("85 02")
    assert data.cells[6].value == 1 and data.cells[6].count_write == 1
    assert data.cells[1].value == 7 and data.cells[1].count_write == 1


async def test_multi_register_write_touching_read_only_writes_nothing() -> None:
    """pymodbus writes value after value, each checked alone: 1 and 2 were written, then 02."""
    data = make_data(uint16=[[0, 5]], write=[[1, 2]])
    service = service_for(data)
    assert await ask(service, "10 0001 0003 06 0009 0009 0009") == bytes.fromhex("90 02")
    assert [c.value for c in data.cells[:4]] == [0, 0, 0, 0]
    assert await ask(service, "0f 0010 0030 06 ffffffffffff") == bytes.fromhex("8f 02")
    assert data.cells[1].value == 0
    assert await ask(service, "10 0001 0002 04 0009 0008") == bytes.fromhex("10 0001 0002")
    assert [c.value for c in data.cells[:4]] == [0, 9, 8, 0]


async def test_out_of_range_answers_02_never_04() -> None:
    """pymodbus indexes past its cell list: IndexError, answered 04."""
    data = make_data(uint16=[[0, 19]])
    service = service_for(data)
    assert await ask(service, "03 0013 0001") == bytes.fromhex("03 02 0000")
    assert await ask(service, "03 0014 0001") == bytes.fromhex("83 02")
    assert await ask(service, "03 0013 0002") == bytes.fromhex("83 02")
    assert await ask(service, "04 ffff 0001") == bytes.fromhex("84 02")
    assert await ask(service, "01 0130 0010") == bytes.fromhex("01 02 00 00")
    assert await ask(service, "01 0138 0010") == bytes.fromhex("81 02")
    assert await ask(service, "01 ffff 0001") == bytes.fromhex("81 02")


async def test_invalid_addresses_answer_02() -> None:
    """pymodbus lets a type section win over ``invalid`` (cell 3 answered), and checks only
    ceil(count / 16) cells of a bit range (bits 9..24 read cell 1, which is invalid)."""
    data = make_data(uint16=[[0, 0], [2, 5]], invalid=[1, 3])
    service = service_for(data)
    assert data.cells[3].type is CellType.INVALID
    for request in ("03 0001 0001", "03 0003 0001", "03 0000 0002", "06 0003 0001"):
        reply = await ask(service, request)
        assert reply is not None and reply[1:] == b"\x02", request
    assert await ask(service, "01 0009 0010") == bytes.fromhex("81 02")
    assert await ask(service, "01 0000 0010") == bytes.fromhex("01 02 00 00")
    assert await ask(service, "03 0004 0002") == bytes.fromhex("03 04 0000 0000")


async def test_type_exception() -> None:
    data = make_data(
        setup={"type exception": True},
        uint16=[0, 10],
        uint32=[[1, 2]],
        string=[{"addr": [3, 5], "value": "abcdef"}],
        float64=[[6, 9]],
        write=[[0, 10]],
    )
    service = service_for(data)
    ok = ("03 0000 0003", "03 0001 0002", "03 0003 0003", "03 0003 0002", "03 0006 0004")
    refused = ("03 0000 0002", "03 0002 0001", "03 0004 0001", "03 0006 0003", "03 0007 0001")
    for request in ok:
        reply = await ask(service, request)
        assert reply is not None and reply[0] == 3, request
    for request in refused:
        assert await ask(service, request) == bytes.fromhex("83 02"), request
    # pymodbus refuses a string followed by another value in one read; it is on boundaries.
    assert (await ask(service, "03 0003 0008") or b"")[0] == 3
    # A uint32 written whole: pymodbus checks each register alone (the first "ends inside").
    assert await ask(service, "10 0001 0002 04 0001 0002") == bytes.fromhex("10 0001 0002")
    assert data.get(1, "uint32") == 0x00010002
    assert await ask(service, "06 0001 0001") == bytes.fromhex("86 02")


async def test_unknown_unit_answers_0b_or_silence_never_04() -> None:
    data = make_data(uint16=[0])
    service = service_for(data, device_id=3)
    assert await ask(service, "03 0000 0001", unit=3) == bytes.fromhex("03 02 0000")
    assert await ask(service, "03 0000 0001", unit=4) == bytes.fromhex("83 0b")
    quiet = service_for(data, device_id=3, ignore_missing_slaves=True)
    assert await ask(quiet, "03 0000 0001", unit=4) is None
    every = service_for(data)  # no device_id: every unit reaches the device
    assert await ask(every, "03 0000 0001", unit=200) == bytes.fromhex("03 02 0000")


async def test_counters_and_actions_per_read() -> None:
    data = make_data(uint16=[{"addr": 0, "action": "increment"}, 1], write=[1])
    service = service_for(data)
    await ask(service, "03 0000 0002")
    await ask(service, "01 0000 0010")
    await ask(service, "06 0001 0005")
    assert (data.cells[0].count_read, data.cells[0].value) == (2, 2)
    assert (data.cells[1].count_read, data.cells[1].count_write) == (1, 1)
    data.reset_counters()
    assert data.cells[0].count_read == 0


# -- typed access -----------------------------------------------------------------------------


def test_int16_is_stored_as_twos_complement() -> None:
    """pymodbus has no int16; a negative uint16 value it stores as is and cannot encode."""
    data = make_data(int16=[{"addr": 0, "value": -1}, {"addr": 1, "value": -32768}])
    assert [c.value for c in data.cells[:2]] == [0xFFFF, 0x8000]
    assert data.get(0) == -1 and data.get(1, "int16") == -32768
    data.set(2, -300, "int16")
    assert data.cells[2].value == 0x10000 - 300
    data.cells[3].value = -2  # a custom action setting a negative value
    assert data.cells[3].value == 0xFFFE
    with pytest.raises(ValueError, match=r"-32768\.\.32767"):
        data.set(0, 40000, "int16")


@pytest.mark.parametrize(
    ("kind", "value", "words"),
    [
        ("uint16", 513, [513]),
        ("int16", -2, [0xFFFE]),
        ("uint32", 0x10002, [1, 2]),
        ("int32", -2, [0xFFFF, 0xFFFE]),
        ("float32", 1.0, [0x3F80, 0]),
        ("float64", 1.0, [0x3FF0, 0, 0, 0]),
    ],
)
def test_typed_get_and_set_with_word_order(kind: str, value: float, words: list[int]) -> None:
    data = make_data(uint16=[[0, 9]])
    data.set(0, value, kind)
    assert [c.value for c in data.cells[: len(words)]] == words
    assert data.get(0, kind) == value
    data.set(4, value, kind, word_order="little")
    assert [c.value for c in data.cells[4 : 4 + len(words)]] == words[::-1]
    assert data.get(4, kind, word_order="little") == value
    assert encode_value(kind, value) == words
    assert decode_value(kind, words) == value


def test_typed_access_errors_and_bits_and_strings() -> None:
    data = make_data(uint16=[[0, 9]], string=[{"addr": [10, 11], "value": "é"}])
    data.set(0, [True, False, True], "bits")
    assert data.cells[0].value == 5
    assert data.get(0, "bits")[:3] == [True, False, True]
    assert data.get(10) == "é  "  # UTF-8, padded (pymodbus overflows the register)
    data.set(10, "xyz")
    assert data.get(10, "string") == "xyz "
    with pytest.raises(ValueError, match="more than 2 registers"):
        data.set(10, "abcde")
    with pytest.raises(ValueError, match="unknown value type"):
        data.get(0, "uint64")
    with pytest.raises(ValueError, match="word order"):
        data.get(0, "uint32", word_order="middle")  # type: ignore[arg-type]
    with pytest.raises(IndexError):
        data.get(19, "uint32")
    with pytest.raises(ValueError, match="does not fit"):
        data.set(0, 1e39, "float32")
    assert math.isnan(decode_value("float32", [0x7FC0, 0]))
    with pytest.raises(TypeError):
        data.cells[0].value = 1.5  # type: ignore[assignment]
    cell = data.cells[0]
    assert isinstance(cell, Cell) and cell.access is False and cell.action_parameters is None
    cell.access = True
    assert cell.writable
    assert repr(cell).startswith("Cell(0, UINT16")
