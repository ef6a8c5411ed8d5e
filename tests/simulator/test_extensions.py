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
