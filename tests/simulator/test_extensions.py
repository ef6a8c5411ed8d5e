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
