"""Our keys under the top-level ``trio_modbus`` key: word order, units and value generators."""

from __future__ import annotations

import copy
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio

from trio_modbus import ConfigurationError
from trio_modbus.simulator import ModbusSimulatorServer, SimulatorData, load_config
from trio_modbus.testing import raw

from ._support import document

TIMEOUT = 20


def with_extensions(extensions: dict[str, Any], **sections: Any) -> dict[str, Any]:
    doc = document({"port": 0}, **sections)
    doc["trio_modbus"] = copy.deepcopy(extensions)
    return doc


@asynccontextmanager
async def running(doc: dict[str, Any], **options: Any) -> AsyncIterator[ModbusSimulatorServer]:
    with trio.fail_after(TIMEOUT):
        async with ModbusSimulatorServer(
            http_host="127.0.0.1", http_port=0, config=doc, **options
        ) as sim:
            yield sim


def http(sim: ModbusSimulatorServer) -> httpx.AsyncClient:
    assert sim.http_address is not None
    host, port = sim.http_address
    return httpx.AsyncClient(base_url=f"http://{host}:{port}")


async def read_registers(
    sim: ModbusSimulatorServer, address: int, count: int, unit: int = 1
) -> bytes | None:
    """The register bytes a read of holding registers answers, or None for an exception."""
    async with raw.connect(sim.modbus_address) as client:
        reply = await client.request(raw.read_holding_registers(address, count), unit=unit)
    if reply.pdu[0] & 0x80:
        return None
    return reply.pdu[2:]


# -- word order ----------------------------------------------------------------------------------

LITTLE = {"devices": {"device": {"word_order": "little"}}}
VALUES = {
    "uint32": [{"addr": [0, 1], "value": 0x12345678}],
    "float32": [{"addr": [2, 3], "value": 1.5}],
    "float64": [{"addr": [4, 7], "value": -2.25}],
    "write": [[0, 7]],
}


def test_word_order_lays_the_files_values_out_little_endian() -> None:
    config = load_config(with_extensions(LITTLE, **VALUES))
    _, device = config.select()
    assert device.word_order == "little"
    data = SimulatorData(device)
    words = [cell.value for cell in data.cells[:8]]
    assert words[:2] == [0x5678, 0x1234]
    assert words[2:4] == [0x0000, 0x3FC0]
    packed = struct.pack(">d", -2.25)
    big = [int.from_bytes(packed[i : i + 2], "big") for i in range(0, 8, 2)]
    assert words[4:8] == big[::-1]
    # get/set default to the device's order; an explicit order still wins.
    assert (data.get(0, "uint32"), data.get(2, "float32"), data.get(4, "float64")) == (
        0x12345678,
        1.5,
        -2.25,
    )
    assert data.get(0, "uint32", word_order="big") == 0x56781234
    data.set(0, 0xAABBCCDD, "uint32")
    assert [c.value for c in data.cells[:2]] == [0xCCDD, 0xAABB]


def test_word_order_defaults_to_big_and_other_devices_keep_it() -> None:
    doc = with_extensions(LITTLE, **VALUES)
    doc["device_list"]["other"] = copy.deepcopy(doc["device_list"]["device"])
    config = load_config(doc)
    assert config.devices["device"].word_order == "little"
    assert config.devices["other"].word_order == "big"
    other = SimulatorData(config.devices["other"])
    assert [c.value for c in other.cells[:2]] == [0x1234, 0x5678]


@pytest.mark.parametrize(
    ("extensions", "message"),
    [
        (
            {"devices": {"device": {"word_order": "middle"}}},
            r"trio_modbus\.devices\.device\.word_order: 'middle' is not a word order;"
            r" valid: 'big', 'little'",
        ),
        (
            {"devices": {"nope": {"word_order": "little"}}},
            r"trio_modbus\.devices\.nope: no device 'nope' in device_list; valid: 'device'",
        ),
        (
            {"devices": {"device": {"byte_order": "little"}}},
            r"trio_modbus\.devices\.device\.byte_order: unknown key; valid keys: 'word_order'",
        ),
        ({"devices": []}, r"trio_modbus\.devices: expected an object"),
    ],
)
def test_word_order_errors_name_the_path(extensions: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_config(with_extensions(extensions, **VALUES))


async def test_word_order_over_the_wire_and_http() -> None:
    async with running(with_extensions(LITTLE, **VALUES)) as sim:
        assert await read_registers(sim, 0, 4) == bytes.fromhex("5678 1234 0000 3fc0")
        async with http(sim) as api:
            got = await api.get("/api/v1/registers/2", params={"type": "float32"})
            assert got.json()["value"] == 1.5
            put = await api.put("/api/v1/registers/0", json={"value": 1, "type": "uint32"})
            assert put.status_code == 200 and put.json()["value"] == 1
            big = await api.get("/api/v1/registers/0?type=uint32&word_order=big")
            assert big.json()["value"] == 0x10000
            config = (await api.get("/api/v1/config")).json()
        assert await read_registers(sim, 0, 2) == bytes.fromhex("0001 0000")
    assert config["trio_modbus"]["devices"] == {"device": {"word_order": "little"}}
    again = SimulatorData(load_config(config).select()[1])
    assert [c.value for c in again.cells[:4]] == [0x5678, 0x1234, 0x0000, 0x3FC0]


# -- several units -------------------------------------------------------------------------------


def two_devices(extensions: dict[str, Any], **server: Any) -> dict[str, Any]:
    doc = with_extensions(extensions, uint16=[{"addr": 0, "value": 1}], write=[0])
    doc["server_list"]["server"].update(server)
    other = copy.deepcopy(doc["device_list"]["device"])
    other["uint16"] = [{"addr": 0, "value": 2}]
    doc["device_list"]["other"] = other
    return doc


UNITS = {"units": {"1": "device", "2": "other", "3": "device"}}


async def test_each_unit_answers_from_its_own_device() -> None:
    async with running(two_devices(UNITS)) as sim:
        assert sorted(sim.units) == [1, 2, 3] and sim.data is sim.units[1] and sim.unit == 1
        assert sim.units[3] is not sim.units[1]  # the same entry, its own cells
        assert await read_registers(sim, 0, 1, unit=1) == bytes.fromhex("0001")
        assert await read_registers(sim, 0, 1, unit=2) == bytes.fromhex("0002")
        sim.units[3].set(0, 7)
        assert await read_registers(sim, 0, 1, unit=3) == bytes.fromhex("0007")
        assert await read_registers(sim, 0, 1, unit=1) == bytes.fromhex("0001")
        async with raw.connect(sim.modbus_address) as client:
            reply = await client.request(raw.read_holding_registers(0, 1), unit=4)
        assert reply.pdu == bytes.fromhex("83 0b")


async def test_units_not_listed_get_nothing_with_ignore_missing_devices() -> None:
    doc = two_devices(UNITS, ignore_missing_devices=True)
    async with running(doc) as sim, raw.connect(sim.modbus_address) as client:
        with trio.move_on_after(0.5) as waited:
            await client.request(raw.read_holding_registers(0, 1), unit=9)
        assert waited.cancelled_caught
        reply = await client.request(raw.read_holding_registers(0, 1), unit=2)
        assert reply.pdu == bytes.fromhex("03 02 0002")


async def test_the_http_api_takes_a_unit() -> None:
    async with running(two_devices(UNITS), modbus_device="other") as sim, http(sim) as api:
        assert sim.unit == 2 and sim.data is sim.units[2]
        assert (await api.get("/api/v1/registers/0")).json()["value"] == 2  # the selected
        assert (await api.get("/api/v1/registers/0?unit=1")).json()["value"] == 1
        put = await api.put("/api/v1/registers/0?unit=3", json={"value": 9, "type": "uint16"})
        assert put.status_code == 200 and put.json()["value"] == 9
        cells = (await api.get("/api/v1/cells?unit=3&count=1")).json()["cells"]
        assert cells[0]["value"] == 9
        assert await read_registers(sim, 0, 1, unit=3) == bytes.fromhex("0009")
        missing = await api.get("/api/v1/registers/0?unit=5")
        assert missing.status_code == 404 and "served: 1, 2, 3" in missing.json()["error"]
        assert (await api.get("/api/v1/cells?unit=x")).status_code == 400
        status = (await api.get("/api/v1/status")).json()
        assert status["units"] == [1, 2, 3]
        sim.units[1].set(0, 5)
        assert (await api.post("/api/v1/reset?unit=3")).status_code == 204
        assert (sim.units[1].get(0), sim.units[3].get(0)) == (5, 1)
        assert (await api.post("/api/v1/reset")).status_code == 204  # every unit
        assert sim.units[1].get(0) == 1


async def test_without_units_every_unit_reaches_the_one_device() -> None:
    async with running(with_extensions({})) as sim, http(sim) as api:
        assert sim.units == {0: sim.data} and sim.unit is None
        assert (await api.get("/api/v1/registers/0?unit=17")).status_code == 200
    async with running(document({"port": 0, "device_id": 4})) as sim, http(sim) as api:
        assert sim.units == {4: sim.data}
        assert (await api.get("/api/v1/registers/0?unit=4")).status_code == 200
        assert (await api.get("/api/v1/registers/0?unit=5")).status_code == 404


async def test_restart_rebuilds_every_unit() -> None:
    async with running(two_devices(UNITS)) as sim:
        before = dict(sim.units)
        sim.units[2].set(0, 50)
        await sim.restart()
        assert sorted(sim.units) == [1, 2, 3] and sim.data is sim.units[1]
        assert all(sim.units[unit] is not before[unit] for unit in before)
        assert await read_registers(sim, 0, 1, unit=2) == bytes.fromhex("0002")


@pytest.mark.parametrize(
    ("units", "message"),
    [
        ({"0": "device"}, r'trio_modbus\.units\["0"\]: \'0\' is not a unit id; valid: 1\.\.255'),
        ({"x": "device"}, r'trio_modbus\.units\["x"\]: \'x\' is not a unit id'),
        (
            {"1": "nope"},
            r"trio_modbus\.units\[\"1\"\]: 'nope' is not in device_list;"
            r" valid: 'device', 'other'",
        ),
        ({"1": "device", "01": "other"}, r'trio_modbus\.units\["01"\]: unit 1 is listed twice'),
    ],
)
def test_unit_errors_name_the_path(units: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_config(two_devices({"units": units}))


def test_a_device_at_no_unit_cannot_be_selected() -> None:
    with pytest.raises(
        ConfigurationError, match=r"modbus_device='other' is at no unit of trio_modbus\.units"
    ):
        ModbusSimulatorServer(
            config=two_devices({"units": {"1": "device"}}), modbus_device="other"
        )


# -- value generators ----------------------------------------------------------------------------


def generating(*generators: dict[str, Any], **extensions: Any) -> dict[str, Any]:
    entries = [{"device": "device", "address": 0, "type": "uint16", **g} for g in generators]
    return with_extensions(
        {"generators": entries, **extensions},
        uint16=[[0, 1]],
        uint32=[[2, 3]],
        float32=[[4, 5]],
        int16=[6],
        write=[[0, 6]],
    )


def values(generator: dict[str, Any], ticks: int = 6) -> list[Any]:
    (spec,) = load_config(generating(generator)).generators
    import random

    rng = random.Random(spec.parameters.get("seed"))
    return [spec.value(tick, rng) for tick in range(ticks)]


def test_each_kind_gives_its_sequence() -> None:
    assert values({"kind": "ramp", "period": 1, "start": 10, "stop": 14, "step": 2}) == [
        10,
        12,
        14,
        10,
        12,
        14,
    ]
    assert values({"kind": "ramp", "period": 1, "start": 3, "stop": 0, "step": -1}, 5) == [
        3,
        2,
        1,
        0,
        3,
    ]
    sine = {"kind": "sine", "period": 1, "amplitude": 100, "offset": 200, "period_s": 4}
    assert values(sine, 5) == [200, 300, 200, 100, 200]
    assert values({"kind": "toggle", "period": 1}, 3) == [0, 1, 0]
    assert values({"kind": "step", "period": 1, "values": [5, 6, 7]}, 4) == [5, 6, 7, 5]
    drawn = values({"kind": "random", "period": 1, "min": 1, "max": 3, "seed": 7}, 20)
    assert set(drawn) <= {1, 2, 3} and len(set(drawn)) > 1
    assert drawn == values({"kind": "random", "period": 1, "min": 1, "max": 3, "seed": 7}, 20)
    floats = {"kind": "ramp", "period": 1, "type": "float32", "address": 4, "stop": 1, "step": 0.5}
    assert values(floats, 4) == [0.0, 0.5, 1.0, 0.0]


async def test_generators_run_on_trios_clock(autojump_clock: trio.testing.MockClock) -> None:
    doc = generating(
        {"kind": "ramp", "period": 1.0, "start": 0, "stop": 100, "step": 10},
        {"kind": "toggle", "period": 2.5, "type": "int16", "address": 6, "values": [-1, 1]},
        {"kind": "step", "period": 0.4, "type": "uint32", "address": 2, "values": [70000, 1]},
    )
    async with running(doc) as sim:
        start = trio.current_time()
        seen = []
        for _ in range(6):
            seen.append((sim.data.get(0), sim.data.get(6), sim.data.get(2, "uint32")))
            await trio.sleep_until(start + len(seen) + 0.25)  # between two ticks
        assert seen == [
            (0, -1, 70000),  # t = 0: the first values are stored at the start
            (10, -1, 1),  # t = 1.25: ramp tick 1, toggle tick 0, step tick 3
            (20, -1, 1),  # t = 2.25: step tick 5
            (30, 1, 70000),  # t = 3.25: toggle tick 1, step tick 8
            (40, 1, 70000),  # t = 4.25: step tick 10
            (50, -1, 1),  # t = 5.25: toggle tick 2, step tick 13
        ]


async def test_generated_values_go_over_the_wire_and_http(
    mock_clock: trio.testing.MockClock,
) -> None:
    doc = generating(
        {"kind": "sine", "period": 1, "type": "float32", "address": 4, "amplitude": 2.0,
         "offset": 1.0, "period_s": 4},
        devices={"device": {"word_order": "little"}},
    )  # fmt: skip
    async with running(doc) as sim, http(sim) as api:
        assert await read_registers(sim, 4, 2) == bytes.fromhex("0000 3f80")  # 1.0, low first
        mock_clock.jump(1.0)
        await trio.testing.wait_all_tasks_blocked()
        assert await read_registers(sim, 4, 2) == bytes.fromhex("0000 4040")  # 3.0
        got = await api.get("/api/v1/registers/4?type=float32")
        assert got.json()["value"] == 3.0


async def test_each_unit_of_the_device_gets_its_values(autojump_clock: object) -> None:
    doc = generating(
        {"kind": "random", "period": 1, "min": 0, "max": 1000, "seed": 3},
        units={"1": "device", "2": "device"},
    )
    async with running(doc) as sim:
        await trio.sleep(3.5)
        assert sim.units[1].get(0) == sim.units[2].get(0)  # the same seed, its own copy
        assert sim.units[1].cells[0].value == sim.units[2].cells[0].value


async def test_restart_restarts_the_generators(autojump_clock: object) -> None:
    doc = generating({"kind": "ramp", "period": 1, "stop": 1000})
    async with running(doc) as sim:
        await trio.sleep(3.5)
        assert sim.data.get(0) == 3
        await sim.restart()
        assert sim.data.get(0) == 0
        await trio.sleep(1.5)
        assert sim.data.get(0) == 1


@pytest.mark.parametrize(
    ("generator", "message"),
    [
        (
            {"kind": "saw", "period": 1},
            r"trio_modbus\.generators\[0\]\.kind: 'saw' is not a generator kind;"
            r" valid: 'ramp', 'sine', 'random', 'toggle', 'step'",
        ),
        ({"kind": "ramp"}, r"trio_modbus\.generators\[0\]: missing 'period'"),
        ({"kind": "ramp", "period": 1}, r"generators\[0\]: missing 'stop' \(a ramp needs it\)"),
        (
            {"kind": "ramp", "period": 1, "stop": 5, "values": [1]},
            r"generators\[0\]\.values: unknown key; valid keys: 'device', 'address', 'type',"
            r" 'kind', 'period', 'stop', 'start', 'step'",
        ),
        ({"kind": "ramp", "period": 0, "stop": 5}, r"generators\[0\]\.period: expected seconds"),
        ({"kind": "ramp", "period": 1, "stop": 5, "step": -1}, r"generators\[0\]\.step: -1"),
        ({"kind": "ramp", "period": 1, "stop": 70000}, r"generators\[0\]\.stop: uint16"),
        ({"kind": "ramp", "period": 1, "stop": 2.5}, r"generators\[0\]\.stop: expected an int"),
        (
            {"kind": "toggle", "period": 1, "type": "string"},
            r"generators\[0\]\.type: 'string' is not a generator type; valid: 'bits', 'uint16'",
        ),
        (
            {"kind": "toggle", "period": 1, "device": "x"},
            r"generators\[0\]\.device: 'x' is not in device_list; valid: 'device'",
        ),
        (
            {"kind": "toggle", "period": 1, "type": "float64", "address": 18},
            r"generators\[0\]\.address: expected an integer in 0\.\.16",
        ),
        ({"kind": "toggle", "period": 1, "values": [1]}, r"\.values: a toggle takes 2 values"),
        ({"kind": "step", "period": 1, "values": []}, r"\.values: give at least one value"),
        ({"kind": "step", "period": 1, "values": [1, -1]}, r"\.values\[1\]: uint16"),
        (
            {"kind": "sine", "period": 1, "amplitude": 10, "period_s": 1},
            r"generators\[0\]\.amplitude: uint16: -10",
        ),
        ({"kind": "random", "period": 1, "min": 5, "max": 1}, r"\.max: below min 5"),
    ],
)
def test_generator_errors_name_the_path(generator: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_config(generating(generator))
