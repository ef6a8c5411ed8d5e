"""``ModbusDeviceContext.window``: direct access that agrees with validate/getValues/setValues."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_modbus.datastore import (
    BlockWindow,
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusSparseDataBlock,
)
from trio_modbus.datastore.blocks import ValueList

from .._fuzz import fuzz_settings

BIT_FUNCTIONS = (1, 2, 5, 15)
REGISTER_FUNCTIONS = (3, 4, 6, 16, 22, 23)
READ_FUNCTION = {1: 1, 5: 1, 15: 1, 2: 2, 3: 3, 6: 3, 16: 3, 22: 3, 23: 3, 4: 4}


def window_of(ctx: ModbusDeviceContext, fc: int) -> BlockWindow:
    window = ctx.window(fc)
    assert window is not None
    return window


def numbered_context(address: int, size: int, zero_mode: bool) -> ModbusDeviceContext:
    def block(base: int) -> ModbusSequentialDataBlock:
        return ModbusSequentialDataBlock(address, [base + n for n in range(size)])

    return ModbusDeviceContext(
        co=block(0), di=block(0), hr=block(1000), ir=block(2000), zero_mode=zero_mode
    )


@pytest.mark.fuzz
@fuzz_settings(200)
@given(
    address=st.integers(0, 6),
    size=st.integers(0, 12),
    zero_mode=st.booleans(),
    fc=st.sampled_from(BIT_FUNCTIONS + REGISTER_FUNCTIONS),
)
def test_the_window_is_what_validate_and_get_values_say(
    address: int, size: int, zero_mode: bool, fc: int
) -> None:
    ctx = numbered_context(address, size, zero_mode)
    window = window_of(ctx, fc)
    assert window.values is ctx.store[ctx.decode(fc)].values
    assert (window.image is None) == (fc in BIT_FUNCTIONS)
    for start in range(20):
        for count in range(1, 8):
            inside = window.low <= start and start + count <= window.high
            assert ctx.validate(fc, start, count) == inside, (start, count)
            if not inside:
                continue
            index = start + window.offset
            expected = ctx.getValues(READ_FUNCTION[fc], start, count)
            assert window.values[index : index + count] == expected
            if window.image is not None:
                assert isinstance(expected, list)
                packed = struct.pack(f">{count}H", *expected)
                assert window.image[2 * index : 2 * (index + count)] == packed


@pytest.mark.parametrize("zero_mode", [False, True])
def test_the_window_stops_at_the_address_space(zero_mode: bool) -> None:
    ctx = ModbusDeviceContext(hr=ModbusSequentialDataBlock(0, [0] * 70000), zero_mode=zero_mode)
    assert (window_of(ctx, 3).low, window_of(ctx, 3).high) == (0, 0x10000)
    # A default block: 65536 values at block address 0; without zero mode, protocol address N
    # is block address N + 1, so the last value is out of reach.
    default = window_of(ModbusDeviceContext(zero_mode=zero_mode), 3)
    offset = 0 if zero_mode else 1
    assert (default.offset, default.low, default.high) == (offset, 0, 0x10000 - offset)


def test_a_block_past_the_first_addresses_starts_the_window_there() -> None:
    ctx = ModbusDeviceContext(hr=ModbusSequentialDataBlock(10, [1, 2, 3]), zero_mode=True)
    window = window_of(ctx, 3)
    assert (window.offset, window.low, window.high) == (-10, 10, 13)
    assert not ctx.validate(3, 9, 1) and ctx.validate(3, 10, 3) and not ctx.validate(3, 10, 4)


@pytest.mark.parametrize("fc", [3, 6, 16, 22, 23])
def test_every_holding_register_function_sees_one_list(fc: int) -> None:
    ctx = ModbusDeviceContext()
    assert window_of(ctx, fc).values is window_of(ctx, 3).values is ctx.store["h"].values
    assert window_of(ctx, fc).image is window_of(ctx, 3).image


def test_a_write_through_the_window_is_what_set_values_writes() -> None:
    ctx = numbered_context(0, 10, zero_mode=False)
    reference = numbered_context(0, 10, zero_mode=False)
    window = window_of(ctx, 16)
    window.values.set_packed(2 + window.offset, 3, b"\x00\x07\x00\x08\xff\xff")
    assert reference.setValues(16, 2, [7, 8, 0xFFFF]) is None
    assert ctx.getValues(3, 0, 9) == reference.getValues(3, 0, 9)
    assert window.image == window.values.image() == struct.pack(">10H", *window.values)
    # Bits: a plain list assignment.
    coils = window_of(ctx, 15)
    coils.values[3 + coils.offset] = True
    assert ctx.getValues(1, 3) == [True]


class CustomBlock(ModbusSequentialDataBlock):
    def getValues(self, address: int, count: int = 1) -> Any:
        return [0] * count


@pytest.mark.parametrize(
    ("store", "fc"),
    [
        pytest.param({"h": ModbusSparseDataBlock({0: 1, 1: 2})}, 3, id="sparse"),
        pytest.param({"h": CustomBlock(0, [1, 2])}, 3, id="subclassed-block"),
        pytest.param({"h": ModbusSequentialDataBlock(0, [1, -1])}, 3, id="no-image"),
        pytest.param({"h": ModbusSequentialDataBlock(0, [1, 0x10000])}, 16, id="no-image-16"),
        pytest.param({}, 4, id="no-block"),
    ],
)
def test_no_window_where_the_block_is_not_plain(store: dict[str, Any], fc: int) -> None:
    ctx = ModbusDeviceContext()
    ctx.store.update(store)
    if not store:
        del ctx.store["i"]
    assert ctx.window(fc) is None


def test_no_window_on_a_plain_list_assigned_to_values() -> None:
    block = ModbusSequentialDataBlock(0, [1, 2])
    block.values = [1, 2]
    assert ModbusDeviceContext(hr=block).window(3) is None


def test_a_bit_block_needs_no_image() -> None:
    ctx = ModbusDeviceContext(co=ModbusSequentialDataBlock(0, [True, False, -1]))
    window = window_of(ctx, 1)
    assert window.image is None
    assert window.values == [True, False, -1]


@pytest.mark.parametrize("fc", [0, 7, 8, 0x14, 0x18, 0x41, 0x80])
def test_no_window_for_other_function_codes(fc: int) -> None:
    ctx = ModbusDeviceContext()
    ctx.register(0x41, "custom", ModbusSequentialDataBlock(0, [5]))
    assert ctx.window(fc) is None


def test_a_registered_block_replaces_the_standard_one() -> None:
    ctx = ModbusDeviceContext()
    mine = ModbusSequentialDataBlock(0, [5, 6])
    ctx.register(3, "mine", mine)
    assert window_of(ctx, 3).values is mine.values
    assert window_of(ctx, 16).values is ctx.store["h"].values


def test_a_window_is_an_immutable_named_tuple() -> None:
    ctx = ModbusDeviceContext()
    window = window_of(ctx, 3)
    assert type(window) is BlockWindow
    with pytest.raises(AttributeError):
        window.low = 5  # type: ignore[misc]
    values, image, offset, low, high = window
    assert window == BlockWindow(values, image, offset, low, high)
    assert (values, image, offset, low, high) == (
        ctx.store["h"].values,
        ctx.store["h"].values.image(),
        1,
        0,
        0xFFFF,
    )
    assert not hasattr(window, "__dict__")
    assert type(window.values) is ValueList


def test_no_window_for_0x17_when_its_halves_reach_another_block() -> None:
    ctx = ModbusDeviceContext(hr=ModbusSequentialDataBlock(0, [1, 2]))
    assert ctx.window(23) is not None
    ctx.register(3, "mine", ModbusSequentialDataBlock(0, [9]))  # the read half moves away
    assert ctx.window(23) is None
    assert ctx.window(16) is not None  # the write half still reaches "h"
