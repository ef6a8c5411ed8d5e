"""ValueList: a plain list that keeps a big-endian register image of its values in step.

The model is a plain ``list``: every operation is applied to a ValueList and to a list side by
side, and the two must agree on the contents, on what the operation returns or raises, and the
ValueList's image must always be the values packed as ``>H`` registers (or None when a value
does not fit in one).
"""

from __future__ import annotations

import contextlib
import copy
import pickle
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from trio_modbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock
from trio_modbus.datastore.blocks import ValueList

from .._fuzz import fuzz_settings

# Mostly register values (so that an image exists most of the time), sometimes one that does
# not fit in a register: a bool fits (it is an int), a float or an int outside 0..0xFFFF not.
registers = st.one_of(st.integers(0, 0xFFFF), st.sampled_from([0, 1, 0x7FFF, 0xFFFF]))
misfits = st.sampled_from([-1, 0x10000, 70000, 2.5, 3.0])
values = st.one_of(registers, registers, registers, st.booleans(), misfits)
indices = st.integers(-12, 12)
bounds = st.none() | st.integers(-12, 12)
steps = st.none() | st.sampled_from([1, 1, 2, 3, -1, -2])

MAX_LENGTH = 40  # growth (extend, +=, *=) stops here, to keep examples small


def fits(value: object) -> bool:
    return isinstance(value, int) and 0 <= value <= 0xFFFF


def packed(plain: list[Any]) -> bytearray:
    return bytearray(struct.pack(f">{len(plain)}H", *plain))


def values_of(block: ModbusSequentialDataBlock) -> ValueList:
    values = block.values
    assert type(values) is ValueList
    return values


def check_image(vl: ValueList, plain: list[Any]) -> None:
    """``vl.image()`` is the packed values, or None exactly when a value does not fit."""
    image = vl.image()
    if all(fits(v) for v in plain):
        assert image is not None
        assert type(image) is bytearray
        assert image == packed(plain)
    else:
        assert image is None


def outcome(operation: Callable[[], Any]) -> tuple[str, Any]:
    """What an operation returned, or the type of what it raised."""
    try:
        return "returned", operation()
    except Exception as exc:
        return "raised", type(exc)


def value_list_machine(values: st.SearchStrategy[Any]) -> type[RuleBasedStateMachine]:
    """A state machine whose operations store values drawn from ``values``."""
    value_lists = st.lists(values, max_size=6)

    class ValueListMachine(RuleBasedStateMachine):
        """Random list operations on a ValueList and on a plain list, compared after each step."""

        def __init__(self) -> None:
            super().__init__()
            self.vl = ValueList()
            self.plain: list[Any] = []

        @initialize(initial=st.lists(values, max_size=12), build=st.booleans())
        def start(self, initial: list[Any], build: bool) -> None:
            self.vl = ValueList(initial)
            self.plain = list(initial)
            if build:
                self.vl.image()

        def both(self, operation: Callable[[list[Any]], Any]) -> None:
            """Apply ``operation`` to the model and to the ValueList: same result, same error."""
            expected = outcome(lambda: operation(self.plain))
            actual = outcome(lambda: operation(self.vl))
            assert actual == expected

        # -- item and slice assignment ----------------------------------------------------------

        @rule(index=indices, value=values)
        def set_item(self, index: int, value: Any) -> None:
            def op(target: list[Any]) -> None:
                target[index] = value

            self.both(op)

        @rule(start=bounds, stop=bounds, step=steps, new=value_lists)
        def set_slice(
            self, start: int | None, stop: int | None, step: int | None, new: list[Any]
        ) -> None:
            """Any length: a resize for step 1, else ValueError unless the size matches."""

            def op(target: list[Any]) -> None:
                target[start:stop:step] = new

            self.both(op)

        @rule(start=bounds, stop=bounds, step=steps, data=st.data())
        def set_slice_same_length(
            self, start: int | None, stop: int | None, step: int | None, data: st.DataObject
        ) -> None:
            """The in-place case: as many values as the slice holds (extended slices too)."""
            size = len(range(*slice(start, stop, step).indices(len(self.plain))))
            new = data.draw(st.lists(values, min_size=size, max_size=size), label="new")

            def op(target: list[Any]) -> None:
                target[start:stop:step] = iter(new)  # an iterator: the list consumes it once

            self.both(op)

        @precondition(lambda self: len(self.plain) < MAX_LENGTH)
        @rule(
            start=indices,
            count=st.integers(-1, 6),
            data=st.binary(max_size=14),
            at=st.integers(-2, 4),
        )
        def set_packed(self, start: int, count: int, data: bytes, at: int) -> None:
            """Packed registers: as a slice assignment of the unpacked values."""

            def model() -> None:
                if count < 0 or at < 0:
                    raise ValueError
                new = struct.unpack_from(f">{count}H", data, at)
                self.plain[start : start + count] = new

            expected = outcome(model)
            actual = outcome(lambda: self.vl.set_packed(start, count, data, at))
            assert actual == expected

        # -- deletion ---------------------------------------------------------------------------

        @rule(index=indices)
        def del_item(self, index: int) -> None:
            def op(target: list[Any]) -> None:
                del target[index]

            self.both(op)

        @rule(start=bounds, stop=bounds, step=steps)
        def del_slice(self, start: int | None, stop: int | None, step: int | None) -> None:
            def op(target: list[Any]) -> None:
                del target[start:stop:step]

            self.both(op)

        @rule(index=st.none() | indices)
        def pop(self, index: int | None) -> None:
            self.both(lambda target: target.pop() if index is None else target.pop(index))

        @rule(value=values)
        def remove(self, value: Any) -> None:
            self.both(lambda target: target.remove(value))

        @rule()
        def clear(self) -> None:
            self.both(lambda target: target.clear())

        # -- growth -----------------------------------------------------------------------------

        @precondition(lambda self: len(self.plain) < MAX_LENGTH)
        @rule(value=values)
        def append(self, value: Any) -> None:
            self.both(lambda target: target.append(value))

        @precondition(lambda self: len(self.plain) < MAX_LENGTH)
        @rule(new=value_lists, as_generator=st.booleans())
        def extend(self, new: list[Any], as_generator: bool) -> None:
            self.both(lambda target: target.extend((v for v in new) if as_generator else new))

        @precondition(lambda self: len(self.plain) < MAX_LENGTH)
        @rule(index=indices, value=values)
        def insert(self, index: int, value: Any) -> None:
            self.both(lambda target: target.insert(index, value))

        @precondition(lambda self: len(self.plain) < MAX_LENGTH)
        @rule(new=value_lists)
        def iadd(self, new: list[Any]) -> None:
            def op(target: list[Any]) -> bool:
                before = target
                target += new
                return target is before  # in place: the same object

            self.both(op)

        @precondition(lambda self: len(self.plain) <= MAX_LENGTH // 3)
        @rule(count=st.integers(-1, 3))
        def imul(self, count: int) -> None:
            def op(target: list[Any]) -> bool:
                before = target
                target *= count
                return target is before

            self.both(op)

        # -- reordering -------------------------------------------------------------------------

        @rule(reverse=st.booleans())
        def sort(self, reverse: bool) -> None:
            self.both(lambda target: target.sort(reverse=reverse))

        @rule()
        def reverse(self) -> None:
            self.both(lambda target: target.reverse())

        # -- observation ------------------------------------------------------------------------

        @rule()
        def look_at_the_image(self) -> None:
            """Build (or fetch) the image: later steps then update it in place."""
            check_image(self.vl, self.plain)

        @invariant()
        def same_contents(self) -> None:
            assert type(self.vl) is ValueList
            assert list(self.vl) == self.plain
            assert len(self.vl) == len(self.plain)

        @invariant()
        def a_built_image_is_never_stale(self) -> None:
            # Peeks at the cached image without building one, so that the steps between two
            # ``image()`` calls run against an unbuilt image as well as a built one.
            cached = self.vl._image
            if type(cached) is bytearray:
                assert cached == packed(self.plain)

        def teardown(self) -> None:
            check_image(self.vl, self.plain)

    return ValueListMachine


# A run of up to 25 steps is an example: 60 of them is this machine's everyday budget.
STATEFUL = fuzz_settings(60, stateful_step_count=25)
# Register values only: the image exists nearly all the time, so steps run against a built one.
TestValueListOfRegisters = value_list_machine(st.one_of(registers, st.booleans())).TestCase
TestValueListOfRegisters.settings = STATEFUL
TestValueListOfRegisters.pytestmark = [pytest.mark.fuzz]
# Misfits too: the image comes and goes.
TestValueListWithMisfits = value_list_machine(values).TestCase
TestValueListWithMisfits.settings = STATEFUL
TestValueListWithMisfits.pytestmark = [pytest.mark.fuzz]


# -- the image ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "has_image"),
    [
        ([], True),
        ([0, 1, 0xFFFF], True),
        ([True, False, 7], True),  # bools are ints: True packs as 1
        ([1, -1], False),
        ([0x10000], False),
        ([70000, 1], False),
        ([1.0], False),
        (["1"], False),
        ([None], False),
    ],
)
def test_the_image_exists_exactly_when_every_value_fits_a_register(
    values: list[Any], has_image: bool
) -> None:
    vl = ValueList(values)
    image = vl.image()
    assert (image is not None) == has_image
    if image is not None:
        assert image == packed(values)


def test_the_image_is_live_and_kept_in_step_in_place() -> None:
    vl = ValueList([1, 2, 3, 4])
    image = vl.image()
    assert image is not None
    vl[1] = 0x1234
    vl[-1] = 0xABCD
    vl[2:3] = [9]
    assert vl.image() is image  # updated in place, not rebuilt
    assert image == packed([1, 0x1234, 9, 0xABCD])


def test_a_misfit_drops_the_image_and_a_later_fix_brings_it_back() -> None:
    vl = ValueList([1, 2, 3])
    assert vl.image() is not None
    vl[1] = 70000
    assert list(vl) == [1, 70000, 3]
    assert vl.image() is None
    vl[0] = 5  # the misfit is still there
    assert vl.image() is None
    vl[1] = 6
    assert vl.image() == packed([5, 6, 3])
    vl[0:2] = [-1, 0]
    assert vl.image() is None
    vl[0:1] = [4]
    assert vl.image() == packed([4, 0, 3])


@pytest.mark.parametrize(
    "mutate",
    [
        lambda vl: vl.append(7),
        lambda vl: vl.extend([7, 8]),
        lambda vl: vl.insert(0, 7),
        lambda vl: vl.pop(),
        lambda vl: vl.pop(0),
        lambda vl: vl.remove(2),
        lambda vl: vl.clear(),
        lambda vl: vl.sort(reverse=True),
        lambda vl: vl.reverse(),
        lambda vl: vl.__iadd__([7]),
        lambda vl: vl.__imul__(2),
        lambda vl: vl.__delitem__(0),
        lambda vl: vl.__delitem__(slice(None, None, 2)),
        lambda vl: vl.__setitem__(slice(None, None, 2), [8, 9]),
        lambda vl: vl.__setitem__(slice(1, 1), [8, 9]),
    ],
)
def test_every_mutating_method_keeps_the_image_in_step(mutate: Callable[[Any], Any]) -> None:
    vl = ValueList([3, 2, 1])
    plain = [3, 2, 1]
    assert vl.image() == packed(plain)
    mutate(vl)
    mutate(plain)
    assert list(vl) == plain
    assert vl.image() == packed(plain)


# -- copies and pickles -----------------------------------------------------------------------


def round_trips(vl: ValueList) -> Iterator[tuple[str, Any]]:
    yield "copy", copy.copy(vl)
    yield "deepcopy", copy.deepcopy(vl)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        yield f"pickle {protocol}", pickle.loads(pickle.dumps(vl, protocol))


@given(st.lists(values, max_size=20), st.booleans())
@settings(max_examples=50, deadline=None)
def test_copies_and_pickles_are_equal_value_lists(items: list[Any], build: bool) -> None:
    vl = ValueList(items)
    if build:
        vl.image()
    for how, twin in round_trips(vl):
        assert type(twin) is ValueList, how
        assert twin is not vl, how
        assert twin == vl, how
        assert list(twin) == items, how
        check_image(twin, items)
        twin.append(1)  # an independent list with an image of its own
        assert list(vl) == items, how
    check_image(vl, items)


@pytest.mark.parametrize("buffer", [bytes, bytearray, memoryview])
def test_set_packed_stores_wire_registers_in_the_list_and_in_place_in_the_image(
    buffer: Callable[[bytes], Any],
) -> None:
    vl = ValueList(range(6))
    image = vl.image()
    assert image is not None
    vl.set_packed(1, 2, buffer(bytes.fromhex("AAAA 1234 ABCD BBBB")), 2)
    assert vl == [0, 0x1234, 0xABCD, 3, 4, 5]
    assert vl.image() is image  # updated in place
    check_image(vl, [0, 0x1234, 0xABCD, 3, 4, 5])


@pytest.mark.parametrize(("start", "at"), [(0, 2), (-2, 0), (2, 0), (5, 2), (-1, 2), (-9, 0)])
def test_set_packed_is_a_slice_assignment_anywhere(start: int, at: int) -> None:
    data = bytes.fromhex("0001 0002 0003")
    plain = list(range(10, 14))
    plain[start : start + 2] = struct.unpack_from(">2H", data, at)
    vl = ValueList(range(10, 14))
    vl.image()
    vl.set_packed(start, 2, data, at)
    assert vl == plain
    assert vl._image == packed(plain)  # the built image kept in step, length changes too


def test_set_packed_takes_more_registers_than_a_request_carries() -> None:
    vl = ValueList([0] * 300)
    vl.image()
    vl.set_packed(10, 200, struct.pack(">200H", *range(200)))
    assert vl[10:210] == list(range(200))
    check_image(vl, [0] * 10 + list(range(200)) + [0] * 90)


def test_set_packed_without_an_image_leaves_it_to_be_built() -> None:
    vl = ValueList([1, -1, 3])  # no image: -1 does not fit
    vl.set_packed(1, 1, b"\x00\x02")
    assert vl == [1, 2, 3]
    check_image(vl, [1, 2, 3])
    unbuilt = ValueList([1, 2, 3])
    unbuilt.set_packed(0, 3, b"\x00\x07" * 3)
    check_image(unbuilt, [7, 7, 7])


def test_set_packed_refuses_short_data_and_stores_nothing() -> None:
    vl = ValueList([1, 2, 3])
    vl.image()
    with pytest.raises(struct.error):
        vl.set_packed(0, 2, b"\x00\x07\x00")
    with pytest.raises(ValueError, match="negative"):
        vl.set_packed(0, -1, b"\x00\x07")
    with pytest.raises(ValueError, match="negative"):
        vl.set_packed(0, 1, b"\x00\x07", -2)
    assert vl == [1, 2, 3]
    check_image(vl, [1, 2, 3])


def test_a_copied_image_is_not_shared() -> None:
    vl = ValueList([1, 2])
    image = vl.image()
    twin = copy.copy(vl)
    twin[0] = 9
    assert image == packed([1, 2])
    assert twin.image() == packed([9, 2])


# -- as ModbusSequentialDataBlock.values ------------------------------------------------------


def test_a_sequential_block_keeps_its_values_in_a_value_list() -> None:
    block = ModbusSequentialDataBlock(0, [1, 2, 3])
    assert type(block.values) is ValueList
    assert isinstance(block.values, list)
    assert block.values == [1, 2, 3]
    for other in (
        ModbusSequentialDataBlock(5, 7),
        ModbusSequentialDataBlock(0, range(4)),
        ModbusSequentialDataBlock(0, ValueList([1])),
        ModbusSequentialDataBlock.create(),
    ):
        assert type(other.values) is ValueList
    defaulted = ModbusSequentialDataBlock(0, [1])
    defaulted.default(3, 9)
    assert type(defaulted.values) is ValueList
    assert values_of(defaulted).image() == packed([9, 9, 9])
    device = ModbusDeviceContext()
    assert all(type(b.values) is ValueList for b in device.store.values())


def test_a_block_does_not_share_the_list_it_was_given() -> None:
    given_values = ValueList([1, 2, 3])
    block = ModbusSequentialDataBlock(0, given_values)
    block.setValues(0, [9])
    assert given_values == [1, 2, 3]
    assert given_values.image() == packed([1, 2, 3])


@pytest.mark.parametrize(
    ("initial", "default"), [([1, 2, 3], 0), ([True, False, True], False), ([5, 70000, 6], 0)]
)
def test_reset_keeps_the_same_list_object_and_its_image(initial: list[Any], default: Any) -> None:
    block = ModbusSequentialDataBlock(0, initial)
    values = values_of(block)
    image = values.image()
    assert (image is None) == (70000 in initial)
    block.reset()
    assert block.values is values
    assert values == [default] * len(initial)
    assert values.image() == packed([default] * len(initial))
    if image is not None:
        assert values.image() is image  # same length: updated in place


@given(
    st.lists(registers, min_size=1, max_size=20),
    st.integers(-3, 25),
    st.lists(values, max_size=6),
    st.booleans(),
)
@settings(max_examples=100, deadline=None)
def test_set_values_keeps_the_image_in_step(
    initial: list[int], address: int, new: list[Any], build: bool
) -> None:
    block = ModbusSequentialDataBlock(3, initial)  # block addresses 3..
    model = list(initial)
    if build:
        values_of(block).image()
    result = block.setValues(address, new)
    start = address - 3
    if start >= 0 and start + len(new) <= len(model):
        assert result is None
        model[start : start + len(new)] = new
    else:
        assert result is not None  # refused, nothing written
    assert block.values == model
    assert type(block.values) is ValueList
    check_image(block.values, model)
    if new:
        one = new[0] if isinstance(new[0], int) else 70000
        single = block.setValues(address, one)  # a single value, not a list
        assert (single is None) == (0 <= start < len(model))
        if single is None:
            model[start] = one
        assert block.values == model
        check_image(block.values, model)


def test_get_values_returns_plain_lists_not_value_lists() -> None:
    block = ModbusSequentialDataBlock(0, [1, 2, 3])
    got = block.getValues(1, 2)
    assert got == [2, 3]
    assert type(got) is list
    assert type(block.values[:]) is list
    assert type(block.values.copy()) is list


# -- regressions: bugs found while reviewing the lane ----------------------------------


def _fails_midway() -> Iterator[int]:
    yield 4
    yield 5
    raise RuntimeError("the source of values failed")


@pytest.mark.parametrize("how", ["extend", "+="])
def test_an_extend_that_fails_midway_keeps_the_image_in_step(how: str) -> None:
    vl = ValueList([1, 2, 3])
    assert vl.image() is not None
    with contextlib.suppress(RuntimeError):
        if how == "extend":
            vl.extend(_fails_midway())
        else:
            vl += _fails_midway()
    assert list(vl) == [1, 2, 3, 4, 5]  # list semantics: what was taken stays
    assert vl.image() == packed([1, 2, 3, 4, 5])


class _Fussy(int):
    """An int that refuses to be compared with 1 (a sort that fails partway)."""

    def __lt__(self, other: int) -> bool:
        if int(self) == 1 or int(other) == 1:
            raise RuntimeError("not comparable")
        return int(self) < int(other)


def test_a_sort_that_fails_midway_keeps_the_image_in_step() -> None:
    vl = ValueList([_Fussy(v) for v in (5, 4, 3, 2, 6, 1)])
    assert vl.image() is not None
    with contextlib.suppress(RuntimeError):
        vl.sort()
    assert vl.image() == packed(list(vl))
