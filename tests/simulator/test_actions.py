"""The actions: built-in (with pymodbus's defects fixed) and custom (both signatures).

Time comes from fake clocks or Trio's virtual clock; randomness from a seed.
"""

from __future__ import annotations

import random
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import trio

from trio_modbus.simulator import SimulatorData, load_config

from ._support import ask, document, make_data, service_for


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def read(data: SimulatorData, address: int, count: int = 1, fc: int = 3) -> list[Any]:
    values = data.context().getValues(fc, address, count)
    assert not isinstance(values, int), values
    return list(values)


@pytest.mark.parametrize(
    ("section", "value", "kind", "top", "bottom"),
    [
        ("uint16", 65534, "uint16", 65535, 0),
        ("bits", 65535, "bits", None, 0),
        ("int16", 32766, "int16", 32767, -32768),
        ("uint32", 0xFFFFFFFE, "uint32", 0xFFFFFFFF, 0),
    ],
)
def test_increment_stays_in_range(
    section: str, value: int, kind: str, top: int | None, bottom: int
) -> None:
    """pymodbus adds 1 past the type's largest value: 65536 in a register (04 on the wire)."""
    data = make_data(
        **{
            section: [
                {"addr": [0, 1] if kind == "uint32" else 0, "value": value, "action": "increment"}
            ]
        }
    )
    width = 2 if kind == "uint32" else 1
    seen = []
    for _ in range(2):
        read(data, 0, width)
        seen.append(data.get(0, kind if kind != "bits" else "uint16"))
    expected = [top, bottom] if top is not None else [bottom, bottom + 1]
    assert seen == expected


def test_increment_with_minval_maxval_and_floats() -> None:
    data = make_data(
        uint16=[
            {
                "addr": 0,
                "value": 9,
                "action": "increment",
                "parameters": {"minval": 5, "maxval": 10},
            }
        ],
        float32=[
            {
                "addr": [1, 2],
                "value": 1.5,
                "action": "increment",
                "kwargs": {"maxval": 3.0, "minval": 1.0},
            }
        ],
    )
    values = [read(data, 0)[0] for _ in range(4)]
    assert values == [10, 5, 6, 7]
    floats = []
    for _ in range(3):
        read(data, 1, 2)
        floats.append(data.get(1, "float32"))
    assert floats == [2.5, 1.0, 2.0]


def test_random_stays_in_range() -> None:
    """pymodbus's default range 1..65536 puts 65536 in a 16-bit register."""
    data = make_data(
        uint16=[{"addr": 0, "action": "random"}],
        int16=[{"addr": 1, "action": "random", "parameters": {"minval": -100000, "maxval": -5}}],
        float32=[
            {"addr": [2, 3], "action": "random", "parameters": {"minval": 1.5, "maxval": 2.5}}
        ],
        data_options={"rng": _MaxRandom()},
    )
    assert read(data, 0) == [65535]  # the largest draw, clipped to the type
    read(data, 1)
    assert data.get(1) == -5
    read(data, 2, 2)
    assert data.get(2) == 2.5
    seeded = [
        make_data(uint16=[{"addr": 0, "action": "random"}], data_options={"seed": 3})
        for _ in range(2)
    ]
    assert [read(seeded[0], 0)[0] for _ in range(5)] == [read(seeded[1], 0)[0] for _ in range(5)]


class _MaxRandom(random.Random):
    def randint(self, a: int, b: int) -> int:
        return b

    def uniform(self, a: float, b: float) -> float:
        return b


def test_timestamp_order_and_weekday() -> None:
    wall = datetime(2024, 2, 29, 13, 45, 59)  # a Thursday
    data = make_data(
        uint16=[{"addr": 0, "action": "timestamp"}, [1, 6], {"addr": 19, "action": "timestamp"}],
        data_options={"wall_clock": lambda: wall},
    )
    # year, month - 1, day, weekday (Monday 1 .. Sunday 7), hour, minute, second: pymodbus's.
    assert read(data, 0, 7) == [2024, 1, 29, 4, 13, 45, 59]
    assert read(data, 19) == [2024]  # at the end of the device: the fields that fit


def test_uptime_counts_from_simulator_start() -> None:
    """pymodbus counts from the import of its module (a class attribute), plus one."""
    clock = FakeClock(5000.0)
    data = make_data(
        uint16=[{"addr": 0, "action": "uptime"}],
        float32=[{"addr": [1, 2], "action": "uptime"}],
        data_options={"clock": clock},
    )
    assert read(data, 0) == [0]
    clock.now += 42.7
    assert read(data, 0) == [42]
    read(data, 1, 2)
    assert data.get(1) == 42.0
    data.mark_start()
    assert read(data, 0) == [0]
    clock.now += 70000  # wraps in the type's range
    assert read(data, 0) == [70000 % 65536]


async def test_uptime_on_trio_virtual_clock(autojump_clock: trio.abc.Clock) -> None:
    data = make_data(
        uint16=[{"addr": 0, "action": "uptime"}], data_options={"clock": trio.current_time}
    )
    await trio.sleep(3600)  # virtual: autojump_clock skips ahead
    assert read(data, 0) == [3600]


async def test_reset_restores_initial_values() -> None:
    """pymodbus raises RuntimeError("RESET server"): the read answers 04, nothing is reset."""
    data = make_data(
        uint16=[{"addr": 0, "value": 7}, {"addr": 1, "value": 3, "action": "increment"}],
        bits=[{"addr": 2, "value": 1, "action": "reset"}],
        write=[0],
    )
    service = service_for(data)
    assert await ask(service, "06 0000 0063") == bytes.fromhex("06 0000 0063")
    assert await ask(service, "03 0001 0001") == bytes.fromhex("03 02 0004")
    assert await ask(service, "03 0002 0001") == bytes.fromhex("03 02 0001")
    assert [c.value for c in data.cells[:3]] == [7, 3, 1]
    data.cells[0].value = 9
    data.context().reset()
    assert data.cells[0].value == 7


CUSTOM_MODULE = textwrap.dedent(
    """
    CALLS = []

    def plain(registers, inx, cell, scale=1):
        CALLS.append(("plain", inx))
        cell.value = registers[inx + 1].value * scale

    def extended(registers, inx, cell, func_code, access_type):
        CALLS.append(("extended", inx, func_code, access_type))
        if access_type == "set":
            cell.value = 0x5555

    custom_actions_dict = {"plain": plain, "extended": extended}
    """
)


@pytest.fixture
def custom_module(tmp_path: Path) -> Path:
    path = tmp_path / "my_sim_actions.py"
    path.write_text(CUSTOM_MODULE)
    return path


def _custom_document() -> dict[str, Any]:
    return document(
        uint16=[
            {"addr": 0, "action": "plain", "parameters": {"scale": 2}},
            {"addr": 1, "value": 21},
            {"addr": 2, "action": "extended"},
        ],
        write=[[0, 2]],
    )


@pytest.mark.parametrize("how", ["path", "dotted"])
async def test_custom_actions_both_signatures(
    custom_module: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if how == "dotted":
        monkeypatch.syspath_prepend(str(custom_module.parent))
        source: Any = "my_sim_actions"
    else:
        source = custom_module
    config = load_config(_custom_document(), custom_actions_module=source)
    _, device = config.select()
    data = SimulatorData(device, custom_actions=config.custom_actions)
    service = service_for(data)
    assert await ask(service, "03 0000 0001") == bytes.fromhex("03 02 002a")  # 21 * 2
    assert await ask(service, "06 0002 0001") == bytes.fromhex("06 0002 0001")  # echo
    assert data.cells[2].value == 0x5555  # set by the action after the write
    assert await ask(service, "03 0002 0001") == bytes.fromhex("03 02 5555")
    calls = config.custom_actions["extended"].__globals__["CALLS"]
    assert calls == [("plain", 0), ("extended", 2, 6, "set"), ("extended", 2, 3, "get")]
    if how == "dotted":
        sys.modules.pop("my_sim_actions", None)


async def test_custom_action_that_raises_is_answered_04() -> None:
    def broken(registers: Any, inx: int, cell: Any) -> None:
        raise RuntimeError("boom")

    data = make_data(uint16=[{"addr": 0, "action": "broken"}], custom_actions={"broken": broken})
    assert await ask(service_for(data), "03 0000 0001") == bytes.fromhex("83 04")


def test_custom_action_parameters_are_checked_at_load() -> None:
    def action(registers: Any, inx: int, cell: Any, *, limit: int) -> None:
        """Takes ``limit`` only."""

    from trio_modbus import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"device_list\.device\.uint16\[0\]\.parameters"):
        load_config(
            document(uint16=[{"addr": 0, "action": "mine", "parameters": {"other": 1}}]),
            custom_actions={"mine": action},
        )
    with pytest.raises(ConfigurationError, match="no custom_actions_dict"):
        load_config(document(), custom_actions_module="json")
    with pytest.raises(ConfigurationError, match="cannot import"):
        load_config(document(), custom_actions_module="no_such_module_here")
    config = load_config(
        document(uint16=[{"addr": 0, "action": "mine", "parameters": {"limit": 1}}]),
        custom_actions={"mine": action},
    )
    with pytest.raises(ConfigurationError, match="lacks"):
        SimulatorData(config.select()[1])  # the actions not passed on
