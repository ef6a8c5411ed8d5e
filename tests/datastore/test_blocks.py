from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_modbus._errors import ConfigurationError
from trio_modbus.datastore import (
    BaseModbusDataBlock,
    ModbusSequentialDataBlock,
    ModbusSparseDataBlock,
)
from trio_modbus.pdu.codes import ExceptionCode

ILLEGAL = ExceptionCode.ILLEGAL_DATA_ADDRESS


# -- sequential ------------------------------------------------------------------------------


def test_sequential_attributes() -> None:
    block = ModbusSequentialDataBlock(10, [1, 2, 3])
    assert block.address == 10
    assert block.values == [1, 2, 3]
    assert block.default_value == 0
    assert isinstance(block.values, list)


def test_sequential_single_value_is_one_entry() -> None:
    block = ModbusSequentialDataBlock(0, 7)
    assert block.values == [7]
    assert block.getValues(0) == [7]


def test_sequential_bool_default_and_iterable_input() -> None:
    assert ModbusSequentialDataBlock(0, [True, False]).default_value is False
    assert ModbusSequentialDataBlock(0, range(3)).values == [0, 1, 2]
    assert ModbusSequentialDataBlock(0, (4, 5)).values == [4, 5]
    empty = ModbusSequentialDataBlock(0, [])
    assert empty.default_value == 0
    assert not empty.validate(0, 1)


def test_sequential_bounds_edge_and_one_past() -> None:
    block = ModbusSequentialDataBlock(100, list(range(100)))
    assert block.validate(100, 100)
    assert block.validate(196, 4)
    assert not block.validate(196, 5)
    assert block.validate(199, 1)
    assert not block.validate(200, 1)
    assert not block.validate(99, 1)
    assert not block.validate(100, 0)
    assert block.getValues(196, 4) == [96, 97, 98, 99]
    assert block.getValues(196, 5) == ILLEGAL
    assert block.getValues(99, 1) == ILLEGAL
    assert block.getValues(199) == [99]


def test_sequential_get_returns_a_copy() -> None:
    block = ModbusSequentialDataBlock(0, [1, 2, 3])
    got = block.getValues(0, 3)
    assert isinstance(got, list)
    got[0] = 99
    assert block.values[0] == 1


def test_sequential_set_scalar_list_tuple() -> None:
    block = ModbusSequentialDataBlock(0, [0] * 10)
    assert block.setValues(0, 5) is None
    assert block.setValues(1, [6, 7]) is None
    assert block.setValues(3, (8,)) is None
    assert block.setValues(9, True) is None
    assert block.values == [5, 6, 7, 8, 0, 0, 0, 0, 0, True]


def test_sequential_set_out_of_range_writes_nothing() -> None:
    block = ModbusSequentialDataBlock(1, [0] * 4)
    assert block.setValues(3, [1, 2, 3]) == ILLEGAL
    assert block.setValues(0, [1]) == ILLEGAL
    assert block.values == [0, 0, 0, 0]
    assert len(block.values) == 4
    assert block.setValues(4, [9]) is None
    assert block.values == [0, 0, 0, 9]


def test_sequential_snake_case_aliases() -> None:
    block = ModbusSequentialDataBlock(0, [0] * 4)
    assert block.set_values(1, [1, 2]) is None
    assert block.get_values(0, 4) == [0, 1, 2, 0]


def test_sequential_reset_in_place() -> None:
    block = ModbusSequentialDataBlock(0, [1, 2, 3])
    values = block.values
    block.reset()
    assert block.values == [0, 0, 0]
    assert values is block.values


def test_sequential_create_and_default() -> None:
    a = ModbusSequentialDataBlock.create()
    b = ModbusSequentialDataBlock.create()
    assert a.address == 0
    assert len(a.values) == 65536
    assert a.values is not b.values
    assert a.validate(65535, 1)
    assert not a.validate(65535, 2)
    a.default(5, 3)
    assert (a.address, a.values, a.default_value) == (0, [3] * 5, 3)


def test_sequential_iter_and_str() -> None:
    block = ModbusSequentialDataBlock(5, [1, 2])
    assert list(block) == [(5, 1), (6, 2)]
    assert str(block) == "DataStore(2, 0)"


@given(
    base=st.integers(0, 50),
    size=st.integers(0, 50),
    address=st.integers(-10, 120),
    count=st.integers(0, 60),
)
def test_sequential_matches_model(base: int, size: int, address: int, count: int) -> None:
    block = ModbusSequentialDataBlock(base, list(range(size)))
    inside = count >= 1 and base <= address and address + count <= base + size
    assert block.validate(address, count) == inside
    got = block.getValues(address, count)
    if inside:
        assert got == list(range(address - base, address - base + count))
        assert block.setValues(address, [7] * count) is None
        assert block.values[address - base : address - base + count] == [7] * count
    elif count >= 1:
        assert got == ILLEGAL
        before = list(block.values)
        assert block.setValues(address, [7] * count) == ILLEGAL
        assert block.values == before


# -- sparse ----------------------------------------------------------------------------------


def test_sparse_init_forms() -> None:
    block = ModbusSparseDataBlock({10: [3, 5, 6, 8], 30: 1, 40: (0, 0)})
    assert block.values == {10: 3, 11: 5, 12: 6, 13: 8, 30: 1, 40: 0, 41: 0}
    assert ModbusSparseDataBlock([4, 5]).values == {0: 4, 1: 5}
    assert ModbusSparseDataBlock().values == {}
    assert ModbusSparseDataBlock.create({1: 2}).values == {1: 2}
    assert ModbusSparseDataBlock().mutable is True
    with pytest.raises(ConfigurationError):
        ModbusSparseDataBlock(5)
    with pytest.raises(ValueError):
        ModbusSparseDataBlock("abc")


def test_sparse_no_shared_default_dict() -> None:
    a = ModbusSparseDataBlock()
    b = ModbusSparseDataBlock()
    a.setValues(1, 1)
    assert b.values == {}


def test_sparse_reads_of_missing_addresses_are_invalid() -> None:
    block = ModbusSparseDataBlock({10: [1, 2], 20: 3})
    assert block.validate(10, 2)
    assert not block.validate(10, 3)
    assert not block.validate(15)
    assert not block.validate(10, 0)
    assert block.getValues(10, 2) == [1, 2]
    assert block.getValues(11, 2) == ILLEGAL
    assert block.getValues(20) == [3]


def test_sparse_mutable_writes_create_addresses() -> None:
    block = ModbusSparseDataBlock({10: 1}, mutable=True)
    assert block.validate_write(500, 3)
    assert not block.validate_write(-1, 1)
    assert block.setValues(500, [7, 8]) is None
    assert block.getValues(500, 2) == [7, 8]
    assert block.setValues(0, 4) is None
    assert block.values[0] == 4


def test_sparse_immutable_refuses_missing_address_without_partial_write() -> None:
    block = ModbusSparseDataBlock({10: [1, 2, 3]}, mutable=False)
    assert block.validate_write(10, 3)
    assert not block.validate_write(11, 3)
    assert block.setValues(11, [9, 9, 9]) == ILLEGAL
    assert block.values == {10: 1, 11: 2, 12: 3}
    assert block.setValues(0, {11: 5, 99: 5}) == ILLEGAL
    assert block.values == {10: 1, 11: 2, 12: 3}
    assert block.setValues(11, [8, 9]) is None
    assert block.values == {10: 1, 11: 8, 12: 9}
    assert block.setValues(0, {10: [4, 4]}) is None
    assert block.values == {10: 4, 11: 4, 12: 9}


def test_sparse_reset_and_use_as_default() -> None:
    block = ModbusSparseDataBlock({1: 1})
    values = block.values
    block.setValues(2, 2)
    block.setValues(1, 5)
    block.reset()
    assert block.values == {1: 1}
    assert block.values is values
    block.setValues(3, 3, use_as_default=True)
    block.setValues(3, 4)
    block.reset()
    assert block.values == {1: 1, 3: 3}


def test_sparse_iter_sorted() -> None:
    block = ModbusSparseDataBlock({5: 1, 2: 9})
    assert list(block) == [(2, 9), (5, 1)]


# -- user subclasses -------------------------------------------------------------------------


class OnlyGetSet(BaseModbusDataBlock[list[int]]):
    """A pymodbus 3.9+ style block: no validate, bad ranges answered by exception code."""

    def __init__(self) -> None:
        self.address = 0
        self.values = [1, 2, 3]
        self.default_value = 0

    def getValues(self, address: int, count: int = 1) -> list[int] | ExceptionCode:
        if address + count > 3:
            return ExceptionCode.ILLEGAL_DATA_VALUE
        return self.values[address : address + count]

    def setValues(self, address: int, values: int | Sequence[int]) -> ExceptionCode | None:
        return ExceptionCode.SERVER_DEVICE_BUSY


def test_base_block_is_abstract() -> None:
    with pytest.raises(TypeError):
        BaseModbusDataBlock()  # type: ignore[abstract]


def test_minimal_subclass_validates_everything_and_aliases_delegate() -> None:
    block = OnlyGetSet()
    assert block.validate(1000, 5)
    assert block.validate_write(1000, 5)
    assert block.get_values(0, 2) == [1, 2]
    assert block.get_values(2, 2) == ExceptionCode.ILLEGAL_DATA_VALUE
    assert block.set_values(0, [1]) == ExceptionCode.SERVER_DEVICE_BUSY
    block.reset()


def test_async_hooks_call_sync_methods() -> None:
    block = ModbusSequentialDataBlock(0, [1, 2])
    coro = block.async_getValues(0, 2)
    with pytest.raises(StopIteration) as done:
        coro.send(None)
    assert done.value.value == [1, 2]
    coro2 = block.async_setValues(0, [5])
    with pytest.raises(StopIteration):
        coro2.send(None)
    assert block.values == [5, 2]
