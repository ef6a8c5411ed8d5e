import collections
from collections.abc import Sequence

import pytest

from trio_modbus._errors import ConfigurationError
from trio_modbus.datastore import (
    ModbusBaseDeviceContext,
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusSparseDataBlock,
)
from trio_modbus.pdu.codes import ExceptionCode

ILLEGAL = ExceptionCode.ILLEGAL_DATA_ADDRESS


def test_decode_map_is_pymodbus() -> None:
    ctx = ModbusDeviceContext()
    assert {fx: ctx.decode(fx) for fx in (1, 5, 15, 2, 3, 6, 16, 22, 23, 4)} == {
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
    assert ctx.decode(0x41) == "x"


def test_encode_is_inverse_read_code() -> None:
    ctx = ModbusDeviceContext()
    assert [ctx.encode(k) for k in "cdhi"] == [1, 2, 3, 4]
    with pytest.raises(KeyError):
        ctx.encode("zz")


def test_positional_order_is_the_seeds() -> None:
    co, di, hr, ir = (ModbusSequentialDataBlock(0, [n] * 4) for n in range(4))
    ctx = ModbusDeviceContext(co, di, hr, ir, True)
    assert ctx.store == {"c": co, "d": di, "h": hr, "i": ir}
    assert ctx.zero_mode
    assert ctx.getValues(1, 0) == [0]
    assert ctx.getValues(2, 0) == [1]
    assert ctx.getValues(3, 0) == [2]
    assert ctx.getValues(4, 0) == [3]


def test_keyword_construction_like_pymodbus_312() -> None:
    hr = ModbusSequentialDataBlock(0, [1] * 4)
    ctx = ModbusDeviceContext(di=None, co=None, ir=None, hr=hr)
    assert ctx.store["h"] is hr
    assert not ctx.zero_mode


def test_missing_blocks_are_fresh_per_context() -> None:
    a = ModbusDeviceContext()
    b = ModbusDeviceContext()
    blocks = [a.store[k] for k in "cdhi"] + [b.store[k] for k in "cdhi"]
    assert len({id(block) for block in blocks}) == 8
    assert len({id(block.values) for block in blocks}) == 8
    a.setValues(16, 0, [42])
    assert b.getValues(3, 0) == [0]
    assert len(a.store["h"].values) == 65536


def test_default_mapping_n_to_n_plus_1() -> None:
    values = [100 + n for n in range(10)]
    ctx = ModbusDeviceContext(hr=ModbusSequentialDataBlock(0, values))
    assert ctx.validate(3, 0, 9)
    assert not ctx.validate(3, 0, 10)
    assert ctx.getValues(3, 0, 9) == values[1:]
    assert ctx.validate(3, 8, 1)
    assert not ctx.validate(3, 9, 1)
    assert ctx.getValues(3, 9, 1) == ILLEGAL
    assert ctx.setValues(6, 0, [7]) is None
    assert ctx.store["h"].values[1] == 7


def test_zero_mode_n_to_n() -> None:
    values = [100 + n for n in range(10)]
    ctx = ModbusDeviceContext(hr=ModbusSequentialDataBlock(0, values), zero_mode=True)
    assert ctx.getValues(3, 0, 10) == values
    assert ctx.validate(3, 9, 1)
    assert not ctx.validate(3, 10, 1)
    ctx.zero_mode = False
    assert ctx.getValues(3, 0, 9) == values[1:]


def test_create_block_last_register_unreachable_without_zero_mode() -> None:
    ctx = ModbusDeviceContext()
    assert ctx.validate(3, 65534, 1)
    assert not ctx.validate(3, 65535, 1)
    assert ModbusDeviceContext(zero_mode=True).validate(3, 65535, 1)


def test_snake_case_aliases() -> None:
    ctx = ModbusDeviceContext(zero_mode=True)
    assert ctx.set_values(5, 3, [True]) is None
    assert ctx.get_values(1, 3) == [True]


def test_validate_write_on_sparse_blocks() -> None:
    mutable = ModbusDeviceContext(hr=ModbusSparseDataBlock({10: 1}), zero_mode=True)
    for fx in (5, 6, 15, 16):
        assert mutable.validate(fx, 500, 2)
    assert not mutable.validate(3, 500, 2)
    assert not mutable.validate(22, 500, 1)  # mask write needs the current value
    assert mutable.setValues(16, 500, [1, 2]) is None
    assert mutable.getValues(3, 500, 2) == [1, 2]

    frozen = ModbusDeviceContext(hr=ModbusSparseDataBlock({10: [1, 2]}, mutable=False))
    assert frozen.validate(16, 9, 2)  # block addresses 10, 11
    assert not frozen.validate(16, 9, 3)
    assert not frozen.validate(6, 100)
    assert frozen.setValues(16, 9, [5, 6, 7]) == ILLEGAL
    assert frozen.store["h"].values == {10: 1, 11: 2}


def test_unknown_function_code() -> None:
    ctx = ModbusDeviceContext()
    assert not ctx.validate(0x41, 0)
    assert ctx.getValues(0x41, 0) == ExceptionCode.ILLEGAL_FUNCTION
    assert ctx.setValues(0x41, 0, [1]) == ExceptionCode.ILLEGAL_FUNCTION


def test_register_pymodbus_form_and_seed_form() -> None:
    ctx = ModbusDeviceContext(zero_mode=True)
    other = ModbusDeviceContext()
    block = ModbusSequentialDataBlock(0, [17] * 10)
    ctx.register(0x41, "cm", block)
    assert ctx.decode(0x41) == "cm"
    assert ctx.store["cm"] is block
    assert ctx.encode("cm") == 0x41
    assert ctx.getValues(0x41, 0, 2) == [17, 17]
    assert other.decode(0x41) == "x"  # per context, not class-wide
    assert ModbusDeviceContext.decode(other, 0x41) == "x"

    ctx.register(0x42, func=ModbusSequentialDataBlock(0, [3]))
    assert ctx.decode(0x42) == "fc42"
    assert ctx.getValues(0x42, 0) == [3]
    ctx.register(0x43, 0x00)
    assert len(ctx.store["fc43"].values) == 65536
    with pytest.raises(ConfigurationError):
        ctx.register(0x80, "bad")


def test_reset_resets_blocks_files_and_fifos() -> None:
    ctx = ModbusDeviceContext(
        hr=ModbusSequentialDataBlock(0, [5] * 4),
        file_records={1: [1, 2]},
        fifo_queues={7: [1]},
    )
    ctx.setValues(16, 0, [9])
    ctx.write_file_record(1, 0, [8])
    records = ctx.file_records[1]
    ctx.fifo_queue(7).append(2)
    ctx.reset()
    assert ctx.store["h"].values == [0] * 4
    assert ctx.read_file_record(1, 0, 2) == [1, 2]
    assert records is ctx.file_records[1]
    assert ctx.read_fifo_queue(7) == [1]


class AuditedBlock(ModbusSequentialDataBlock):
    """A user subclass overriding the camelCase methods, as pymodbus users do."""

    def __init__(self) -> None:
        super().__init__(0, list(range(20)))
        self.calls: list[tuple[str, int, object]] = []

    def validate(self, address: int, count: int = 1) -> bool:
        self.calls.append(("validate", address, count))
        return address != 5 and super().validate(address, count)

    def getValues(self, address: int, count: int = 1) -> list[int] | ExceptionCode:
        self.calls.append(("get", address, count))
        result = super().getValues(address, count)
        return result if isinstance(result, int) else [2 * v for v in result]

    def setValues(self, address: int, values: int | Sequence[int]) -> ExceptionCode | None:
        self.calls.append(("set", address, values))
        if address == 7:
            return ExceptionCode.SERVER_DEVICE_BUSY
        return super().setValues(address, values)


def test_user_subclass_is_honoured_through_the_context() -> None:
    block = AuditedBlock()
    ctx = ModbusDeviceContext(hr=block)
    assert ctx.validate(3, 0, 2)  # block address 1
    assert not ctx.validate(3, 4, 1)  # block address 5 refused by the override
    assert not ctx.validate(16, 4, 1)  # the write rule defaults to validate
    assert ctx.getValues(3, 0, 2) == [2, 4]
    assert ctx.get_values(3, 0, 1) == [2]
    assert ctx.setValues(16, 6, [1]) == ExceptionCode.SERVER_DEVICE_BUSY
    assert ctx.set_values(6, 0, [9]) is None
    assert block.values[1] == 9
    assert [c[0] for c in block.calls] == [
        "validate",
        "validate",
        "validate",
        "get",
        "get",
        "set",
        "set",
    ]


class CustomContext(ModbusBaseDeviceContext):
    """A pymodbus 3.9+ style context: getValues/setValues only, no __init__."""

    def getValues(self, fx: int, address: int, count: int = 1) -> list[int] | ExceptionCode:
        return [fx] * count


def test_base_context_defaults() -> None:
    base = ModbusBaseDeviceContext()
    assert base.validate(3, 0, 10)
    assert base.getValues(3, 0) == ExceptionCode.ILLEGAL_FUNCTION
    assert base.setValues(6, 0, [1]) == ExceptionCode.ILLEGAL_FUNCTION
    assert base.read_file_record(1, 0, 1) == ExceptionCode.ILLEGAL_FUNCTION
    assert base.write_file_record(1, 0, [1]) == ExceptionCode.ILLEGAL_FUNCTION
    assert base.read_fifo_queue(0) == ExceptionCode.ILLEGAL_FUNCTION
    base.reset()
    custom = CustomContext()
    assert custom.get_values(4, 0, 2) == [4, 4]
    custom.register(0x41, "cm")
    assert custom.decode(0x41) == "cm"
    assert CustomContext().decode(0x41) == "x"


# -- file records ----------------------------------------------------------------------------


def test_no_files_by_default() -> None:
    ctx = ModbusDeviceContext()
    assert ctx.file_records == {}
    assert ctx.read_file_record(1, 0, 1) == ILLEGAL
    assert ctx.write_file_record(1, 0, [1]) == ILLEGAL


def test_file_record_round_trip_and_bounds() -> None:
    ctx = ModbusDeviceContext(file_records={4: 10, 9: [1, 2, 3]})
    assert ctx.read_file_record(4, 0, 10) == [0] * 10
    assert ctx.write_file_record(4, 7, [0x1234, 0xFFFF, 1]) is None
    assert ctx.read_file_record(4, 7, 3) == [0x1234, 0xFFFF, 1]
    assert ctx.write_file_record(4, 8, [1, 2, 3]) == ILLEGAL
    assert ctx.read_file_record(4, 7, 3) == [0x1234, 0xFFFF, 1]
    assert ctx.read_file_record(4, 9, 2) == ILLEGAL
    assert ctx.read_file_record(4, -1, 1) == ILLEGAL
    assert ctx.read_file_record(9, 0, 3) == [1, 2, 3]
    assert ctx.read_file_record(5, 0, 1) == ILLEGAL


def test_add_and_remove_file() -> None:
    ctx = ModbusDeviceContext()
    ctx.add_file(0xFFFF, 10000)
    assert ctx.read_file_record(0xFFFF, 0x270F, 1) == [0]
    ctx.remove_file(0xFFFF)
    assert ctx.read_file_record(0xFFFF, 0, 1) == ILLEGAL
    for bad in (0, 0x10000):
        with pytest.raises(ConfigurationError):
            ctx.add_file(bad, 1)
    with pytest.raises(ConfigurationError):
        ctx.add_file(1, 10001)
    with pytest.raises(ConfigurationError):
        ctx.add_file(1, -1)
    with pytest.raises(ConfigurationError):
        ctx.add_file(1, [0x10000])
    with pytest.raises(ConfigurationError):
        ctx.add_file(1, [0] * 10001)


def test_files_are_per_context() -> None:
    a = ModbusDeviceContext(file_records={1: 2})
    b = ModbusDeviceContext(file_records={1: 2})
    a.write_file_record(1, 0, [5])
    assert b.read_file_record(1, 0, 1) == [0]


# -- FIFO ------------------------------------------------------------------------------------


def test_fifo_read_does_not_remove_and_is_oldest_first() -> None:
    ctx = ModbusDeviceContext(fifo_queues={0x04DE: [0x01B8, 0x1284]})
    assert ctx.read_fifo_queue(0x04DE) == [0x01B8, 0x1284]
    assert ctx.read_fifo_queue(0x04DE) == [0x01B8, 0x1284]
    assert ctx.read_fifo_queue(0x04DF) == ILLEGAL


def test_fifo_accessor_creates_and_has_no_limit() -> None:
    ctx = ModbusDeviceContext()
    queue = ctx.fifo_queue(10)
    assert isinstance(queue, collections.deque)
    assert ctx.read_fifo_queue(10) == []
    queue.extend(range(40))
    assert ctx.fifo_queue(10) is queue
    assert ctx.read_fifo_queue(10) == list(range(40))
    queue.popleft()
    assert ctx.read_fifo_queue(10) == list(range(1, 40))


def test_fifo_bad_config() -> None:
    ctx = ModbusDeviceContext()
    with pytest.raises(ConfigurationError):
        ctx.add_fifo_queue(0x10000)
    with pytest.raises(ConfigurationError):
        ctx.add_fifo_queue(1, [-1])
    assert ctx.add_fifo_queue(1, [1, 2]) == collections.deque([1, 2])


def test_async_hooks_on_context() -> None:
    ctx = ModbusDeviceContext(zero_mode=True)
    coro = ctx.async_setValues(6, 1, [3])
    with pytest.raises(StopIteration):
        coro.send(None)
    coro2 = ctx.async_getValues(3, 1)
    with pytest.raises(StopIteration) as done:
        coro2.send(None)
    assert done.value.value == [3]
    assert str(ctx) == "Modbus device Context"
