"""GET /api/v1/config and /api/v1/export with several units: every unit's device, our key.

Each document is loaded into a new simulator, which must have the same units, the same cells
(every cell of every unit) and the same generators.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio

from trio_modbus.simulator import ModbusSimulatorServer
from trio_modbus.testing import raw

from ._support import document

TIMEOUT = 20
TOKEN = "secret-token"


def two_units() -> dict[str, Any]:
    """Unit 1 on ``little`` (little word order), unit 2 on ``big``, a generator on ``big``."""
    doc = document(
        {"port": 0},
        uint16=[{"addr": [0, 1], "value": 1}],
        uint32=[{"addr": [2, 3], "value": 0x12345678}],
        float32=[{"addr": [4, 5], "value": 1.5}],
        write=[[0, 5]],
    )
    little = doc["device_list"].pop("device")
    big = copy.deepcopy(little)
    big["uint16"] = [{"addr": [0, 1], "value": 7}, {"addr": [6, 7], "value": 0}]
    big["uint32"] = [{"addr": [2, 3], "value": 4000000000}]
    big["float32"] = [{"addr": [4, 5], "value": -2.25}]
    big["write"] = [[0, 7]]
    doc["device_list"] = {"little": little, "big": big}
    doc["trio_modbus"] = {
        "token": TOKEN,
        "devices": {"little": {"word_order": "little"}},
        "units": {"1": "little", "2": "big"},
        "generators": [
            {
                "device": "big",
                "address": 6,
                "type": "uint16",
                "kind": "ramp",
                "period": 3600,  # one value in a test: the first, stored at the start
                "start": 10,
                "stop": 20,
            }
        ],
        "faults": [{"action": "busy", "unit": 9}],
    }
    return doc


def build(doc: dict[str, Any]) -> ModbusSimulatorServer:
    return ModbusSimulatorServer(http_host="127.0.0.1", http_port=0, config=doc)


@asynccontextmanager
async def running(doc: dict[str, Any]) -> AsyncIterator[ModbusSimulatorServer]:
    with trio.fail_after(TIMEOUT):
        async with build(doc) as sim:
            yield sim


def http(sim: ModbusSimulatorServer) -> httpx.AsyncClient:
    assert sim.http_address is not None
    host, port = sim.http_address
    return httpx.AsyncClient(
        base_url=f"http://{host}:{port}", headers={"Authorization": f"Bearer {TOKEN}"}
    )


def cells(sim: ModbusSimulatorServer) -> dict[int, list[tuple[Any, ...]]]:
    """Every cell of every unit."""
    return {
        unit: [(c.type, c.value, c.writable, c.action, c.parameters) for c in data.cells]
        for unit, data in sim.units.items()
    }


def units(sim: ModbusSimulatorServer) -> dict[int, tuple[str, str]]:
    """Each unit's device name and word order."""
    return {unit: (data.device.name, data.word_order) for unit, data in sim.units.items()}


def generators(sim: ModbusSimulatorServer) -> list[tuple[Any, ...]]:
    return [
        (g.device, g.address, g.type, g.kind, g.period, dict(g.parameters))
        for g in sim.config.generators
    ]


async def test_the_config_loads_into_the_same_units_cells_and_generators() -> None:
    async with running(two_units()) as sim, http(sim) as api:
        response = await api.get("/api/v1/config")
    assert response.status_code == 200
    doc = response.json()
    assert TOKEN not in json.dumps(doc)
    assert set(doc["device_list"]) == {"little", "big"}
    extensions = doc["trio_modbus"]
    assert extensions["units"] == {"1": "little", "2": "big"}
    assert extensions["devices"] == {"little": {"word_order": "little"}}
    assert extensions["faults"] == [{"action": "busy", "unit": 9}]
    again, fresh = build(doc), build(two_units())
    assert units(again) == units(fresh) == {1: ("little", "little"), 2: ("big", "big")}
    assert again.unit == 1
    assert cells(again) == cells(fresh)
    assert generators(again) == generators(sim) != []


async def test_the_export_loads_into_the_current_state_of_every_unit() -> None:
    async with running(two_units()) as sim, http(sim) as api:
        async with raw.connect(sim.modbus_address) as client:
            reply = await client.request(raw.write_registers(2, [0xAAAA, 0xBBBB]), unit=2)
            assert not reply.pdu[0] & 0x80
        put = await api.put("/api/v1/registers/4?unit=1", json={"value": 3.75, "type": "float32"})
        assert put.status_code == 200
        put = await api.put(
            "/api/v1/registers/2?unit=1", json={"value": 0x01020304, "type": "uint32"}
        )
        assert put.status_code == 200
        response = await api.get("/api/v1/export")
        assert response.status_code == 200
        doc = response.json()
        assert sim.units[2].get(6) == 10  # the generator's first value
        assert sim.units[1].cells[4].value == 0  # 3.75, low word first
        expected = cells(sim)
    assert TOKEN not in json.dumps(doc)
    assert doc["trio_modbus"]["units"] == {"1": "little", "2": "big"}
    assert doc["trio_modbus"]["devices"] == {"little": {"word_order": "little"}}
    assert doc["device_list"]["little"]["float32"] == [
        {"addr": [4, 5], "value": 3.75, "action": None}
    ]
    again = build(doc)
    assert units(again) == units(sim)
    assert cells(again) == expected
    assert again.units[1].get(2) == 0x01020304 and again.units[2].get(2) == 0xAAAABBBB
    assert generators(again) == generators(sim) != []


async def test_units_sharing_a_device_with_different_states_get_an_entry_each() -> None:
    doc = two_units()
    doc["trio_modbus"]["units"] = {"1": "little", "2": "big", "3": "little"}
    async with running(doc) as sim, http(sim) as api:
        sim.units[3].set(0, 99)
        exported = (await api.get("/api/v1/export")).json()
        expected = cells(sim)
    assert exported["trio_modbus"]["units"] == {"1": "little", "2": "big", "3": "little@3"}
    again = build(exported)
    assert cells(again) == expected
    assert again.units[3].word_order == "little"
    assert {g.device for g in again.config.generators} == {"big"}


async def test_on_write_entries_follow_their_devices_and_the_scenario_stays_out() -> None:
    doc = two_units()
    doc["trio_modbus"]["units"] = {"1": "little", "2": "big", "3": "little"}
    little_entry = {
        "device": "little",
        "address": 0,
        "set": [{"address": 1, "value": 5, "type": "uint16"}],
        "listener": "stop",
    }
    big_entry = {"device": "big", "address": 1, "fault": {"action": "busy", "times": 1}}
    doc["trio_modbus"]["on_write"] = [little_entry, big_entry]
    doc["trio_modbus"]["scenario"] = [{"at": 3600, "clear_faults": True}]
    async with running(doc) as sim, http(sim) as api:
        sim.units[3].set(0, 99)
        exported = (await api.get("/api/v1/export")).json()
        config = (await api.get("/api/v1/config")).json()
    assert exported["trio_modbus"]["on_write"] == [
        little_entry,
        {**little_entry, "device": "little@3"},
        big_entry,
    ]
    assert "scenario" not in exported["trio_modbus"]
    assert config["trio_modbus"]["on_write"] == [little_entry, big_entry]
    assert config["trio_modbus"]["scenario"] == [{"at": 3600.0, "clear_faults": True}]
    async with running(exported) as sim:
        async with raw.connect(sim.modbus_address) as client:
            reply = await client.request(raw.write_register(0, 1), unit=3)
            assert reply.pdu == raw.write_register(0, 1)
        assert sim.units[3].get(1) == 5 and sim.units[1].get(1) == 1  # unit 3's own entry


def test_the_openapi_document_names_the_unit_of_each_route_that_takes_it() -> None:
    from trio_modbus.simulator._openapi import openapi_document

    paths = openapi_document()["paths"]
    for route, method in [
        ("/api/v1/cells", "get"),
        ("/api/v1/registers/{address}", "get"),
        ("/api/v1/registers/{address}", "put"),
        ("/api/v1/reset", "post"),
    ]:
        (unit,) = [p for p in paths[route][method]["parameters"] if p["name"] == "unit"]
        assert unit["in"] == "query" and unit["schema"] == {"type": "integer"}
