"""The simulator's /api/v1 additions: event streams, config, export, restart, OpenAPI, refusals.

Streams are read with httpx's streaming client over real sockets (port 0), under Trio.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from trio_modbus.server import ModbusSimulatorServer
from trio_modbus.simulator import load_config
from trio_modbus.simulator._http import build_app
from trio_modbus.testing import raw

from .test_server import config as base_config

TIMEOUT = 20


def simulator(**options: Any) -> ModbusSimulatorServer:
    options.setdefault("config", base_config())
    return ModbusSimulatorServer(http_host="127.0.0.1", http_port=0, **options)


@pytest.fixture
async def sim() -> AsyncIterator[ModbusSimulatorServer]:
    with trio.fail_after(TIMEOUT):
        async with simulator() as running:
            yield running


def http(sim: ModbusSimulatorServer, **options: Any) -> httpx.AsyncClient:
    assert sim.http_address is not None
    return httpx.AsyncClient(base_url="http://{}:{}".format(*sim.http_address), **options)


async def read_events(lines: AsyncIterator[str]) -> list[dict[str, Any]]:
    """Every event of a server-sent event stream, read to its end (comments skipped)."""
    events: list[dict[str, Any]] = []
    fields: dict[str, str] = {}
    async for line in lines:
        if line == "":
            if "data" in fields:
                data = json.loads(fields["data"])
                events.append({"id": int(fields["id"]), "event": fields["event"], **data})
            fields = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            fields[key] = value
    return events


# -- streams --------------------------------------------------------------------------------------


async def test_the_calls_stream_sends_each_call_once_its_reply_is_out(
    sim: ModbusSimulatorServer,
) -> None:
    async with http(sim) as api, raw.connect(sim.modbus_address) as client:
        await client.request(raw.read_holding_registers(10, 1))  # before: not streamed
        two = {"limit": 2}
        async with api.stream("GET", "/api/v1/calls/stream", params=two) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            await api.post("/api/v1/faults", json={"action": "busy", "times": 1})
            await client.request(raw.read_holding_registers(11, 2))
            await client.request(raw.write_register(12, 5))
            first, second = await read_events(response.aiter_lines())
    assert (first["id"], first["seq"], first["event"]) == (2, 2, "call")
    assert first["exception_code"] == 6 and first["rule_id"] == 1
    assert first["reply_hex"] is not None and first["latency"] is not None
    assert (second["id"], second["function"], second["address"]) == (
        3,
        "write_single_register",
        12,
    )


async def test_a_stream_resumes_after_last_event_id(sim: ModbusSimulatorServer) -> None:
    async with http(sim) as api, raw.connect(sim.modbus_address) as client:
        for address in range(3):
            await client.request(raw.read_holding_registers(address + 10, 1))
        headers = {"last-event-id": "1"}
        async with api.stream(
            "GET", "/api/v1/calls/stream", headers=headers, params={"limit": 2}
        ) as response:
            events = await read_events(response.aiter_lines())
        assert [e["id"] for e in events] == [2, 3]
        replay = {"since": 0, "limit": 3}
        async with api.stream("GET", "/api/v1/calls/stream", params=replay) as response:
            events = await read_events(response.aiter_lines())
        assert [e["id"] for e in events] == [1, 2, 3]


async def test_a_call_without_reply_is_streamed_after_a_while(
    sim: ModbusSimulatorServer,
) -> None:
    async with http(sim) as api, raw.connect(sim.modbus_address) as client:
        await api.post("/api/v1/faults", json={"action": "no_reply", "times": 1})
        two = {"limit": 2}
        async with api.stream("GET", "/api/v1/calls/stream", params=two) as response:
            with trio.move_on_after(0.2):
                await client.request(raw.read_holding_registers(10, 1))
            await client.request(raw.read_holding_registers(11, 1))
            first, second = await read_events(response.aiter_lines())
    assert first["reply"] == "no reply" and first["reply_hex"] is None
    assert second["seq"] == first["seq"] + 1 and second["reply_hex"] is not None


async def test_the_log_stream_sends_each_line(sim: ModbusSimulatorServer) -> None:
    async with http(sim) as api:
        async with api.stream("GET", "/api/v1/log/stream", params={"limit": 2}) as response:
            logging.getLogger("trio_modbus.simulator").warning("first")
            logging.getLogger("trio_modbus.simulator").warning("second")
            events = await read_events(response.aiter_lines())
        assert [(e["event"], e["message"]) for e in events] == [
            ("log", "first"),
            ("log", "second"),
        ]
        assert events[1]["id"] == events[0]["id"] + 1 == events[1]["seq"]
        resumed = {"last-event-id": str(events[0]["id"])}
        async with api.stream(
            "GET", "/api/v1/log/stream", headers=resumed, params={"limit": 1}
        ) as response:
            [again] = await read_events(response.aiter_lines())
        assert again["message"] == "second"


async def test_streams_end_cleanly_when_the_simulator_stops() -> None:
    ended: list[str] = []
    with trio.fail_after(TIMEOUT):
        async with simulator() as sim, http(sim) as api:

            async def follow(path: str) -> None:
                async with api.stream("GET", path) as response:
                    # ends without an error: the chunked body was closed properly
                    assert await read_events(response.aiter_lines()) == []
                ended.append(path)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(follow, "/api/v1/calls/stream")
                nursery.start_soon(follow, "/api/v1/log/stream")
                await trio.sleep(0.2)
                started = trio.current_time()
                await sim.stop()
                assert trio.current_time() - started < 1.5  # no waiting out the grace time
    assert sorted(ended) == ["/api/v1/calls/stream", "/api/v1/log/stream"]
    assert not sim.running


@pytest.mark.parametrize("path", ["/api/v1/calls/stream", "/api/v1/log/stream"])
async def test_a_bad_last_event_id_or_limit_is_refused(
    sim: ModbusSimulatorServer, path: str
) -> None:
    async with http(sim) as api:
        response = await api.get(path, headers={"last-event-id": "x"})
        assert response.status_code == 400 and "Last-Event-ID" in response.json()["error"]
        for limit in ("0", "x"):
            response = await api.get(path, params={"limit": limit})
            assert response.status_code == 400 and "limit" in response.json()["error"]
        assert (await api.post(path)).status_code == 405


# -- config and export ----------------------------------------------------------------------------


async def test_config_is_the_effective_configuration_as_pymodbus_json(
    sim: ModbusSimulatorServer,
) -> None:
    async with http(sim) as api:
        response = await api.get("/api/v1/config")
    assert response.status_code == 200
    document = response.json()
    assert set(document) == {"server_list", "device_list"}
    server, device = load_config(document).select()
    assert server == sim.server_config
    assert device == sim.device_config and device._cells == sim.device_config._cells


async def test_config_keeps_faults_and_port_but_not_the_token() -> None:
    document = base_config()
    document["trio_modbus"] = {"faults": [{"action": "busy", "unit": 3}], "token": "secret"}
    with trio.fail_after(TIMEOUT):
        async with (
            simulator(config=document, modbus_port=0) as sim,
            http(sim, headers={"authorization": "Bearer secret"}) as api,
        ):
            got = (await api.get("/api/v1/config")).json()
    assert got["trio_modbus"] == {"faults": [{"action": "busy", "unit": 3}]}
    assert "secret" not in json.dumps(got)
    assert got["server_list"]["server"]["port"] == 0


def _cells(sim_or_data: Any) -> list[tuple[Any, ...]]:
    data = getattr(sim_or_data, "data", sim_or_data)
    return [(c.type, c.value, c.writable, c.action, c.parameters) for c in data.cells]


async def test_export_loads_into_a_simulator_with_the_same_cells(
    sim: ModbusSimulatorServer,
) -> None:
    async with http(sim) as api, raw.connect(sim.modbus_address) as client:
        await client.request(raw.write_registers(10, [1, 2, 3]))
        await client.request(raw.write_coils(5, [True, False, True]))
        await api.put("/api/v1/registers/52", json={"value": 123456789, "type": "uint32"})
        await api.put("/api/v1/registers/60", json={"value": -2.25, "type": "float32"})
        await api.put("/api/v1/registers/70", json={"value": "exported", "type": "string"})
        await client.request(raw.read_holding_registers(50, 1))  # the increment action runs
        response = await api.get("/api/v1/export")
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    document = response.json()
    assert document["device_list"]["device"]["repeat"] == []
    again = simulator(config=document)
    assert _cells(again) == _cells(sim)
    assert again.data.get(70, "string").startswith("exported")


async def test_export_writes_what_json_cannot_carry_as_registers(
    sim: ModbusSimulatorServer,
) -> None:
    nan = struct.unpack(">HH", struct.pack(">I", 0x7FC00001))  # a NaN with a payload
    sim.data.cells[60].value, sim.data.cells[61].value = nan
    sim.data.cells[70].value = 0xFFFE  # not UTF-8
    async with http(sim) as api:
        document = (await api.get("/api/v1/export")).json()
    again = simulator(config=document)
    assert [c.value for c in again.data.cells] == [c.value for c in sim.data.cells]
    assert math.isnan(sim.data.get(60, "float32"))
    assert again.data.cells[60].type.label == "uint16"  # the type changes, not the values


def test_export_of_extension_types_and_repeat() -> None:
    from trio_modbus.simulator import SimulatorData
    from trio_modbus.simulator._export import export_document

    from ._support import document as support_document

    config = load_config(
        support_document(
            int16=[{"addr": 1, "value": -5}],
            float64=[{"addr": [4, 7], "value": 1.5}],
            uint16=[{"addr": 2, "value": 9, "action": "increment", "parameters": {"maxval": 20}}],
            repeat=[{"addr": [1, 2], "to": [10, 13]}],
            write=[[1, 2]],
        )
    )
    server, device = config.select()
    data = SimulatorData(device)
    exported = export_document(server, device, data)
    assert "int16" in exported["device_list"]["device"]["setup"]["defaults"]["value"]
    _, reloaded = load_config(exported).select()
    assert _cells(SimulatorData(reloaded)) == _cells(data)


# -- restart --------------------------------------------------------------------------------------


async def test_restart_reloads_the_file_and_rebinds(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    document = base_config()
    path.write_text(json.dumps(document))
    with trio.fail_after(TIMEOUT):
        async with simulator(config=None, json_file=path) as sim, http(sim) as api:
            async with raw.connect(sim.modbus_address) as client:
                await client.request(raw.read_holding_registers(10, 1))
            first = sim.modbus_address
            changed = copy.deepcopy(document)
            changed["device_list"]["device"]["uint16"][0] = {"addr": [10, 49], "value": 42}
            path.write_text(json.dumps(changed))
            response = await api.post("/api/v1/restart")
            assert response.status_code == 200
            assert response.json()["modbus"]["address"] == list(sim.modbus_address)
            assert sim.modbus_address == first  # port 0 in the file: the port it had
            async with raw.connect(sim.modbus_address) as client:
                reply = await client.request(raw.read_holding_registers(10, 1))
            assert reply.registers() == [42]
            calls = (await api.get("/api/v1/calls")).json()
            assert [c["seq"] for c in calls["calls"]] == [1, 2]  # the log carried over
            path.write_text("{broken")
            bad = await api.post("/api/v1/restart")
            assert bad.status_code == 422 and "nothing changed" in bad.json()["error"]
            async with raw.connect(sim.modbus_address) as client:
                reply = await client.request(raw.read_holding_registers(10, 1))
            assert reply.registers() == [42]


@pytest.mark.parametrize(
    ("options", "status", "message"),
    [
        (
            {"content": b"x=1", "headers": {"content-type": "application/x-www-form-urlencoded"}},
            400,
            "form posts are refused",
        ),
        (
            {"content": b"{}", "headers": {"content-type": "text/plain"}},
            400,
            "form posts are refused",
        ),
        (
            {"content": b"{bad", "headers": {"content-type": "application/json"}},
            400,
            "malformed JSON",
        ),
        ({"headers": {"origin": "http://evil.example"}}, 403, "cross-origin"),
        ({"headers": {"origin": "null"}}, 403, "opaque origin"),
        ({"headers": {"sec-fetch-site": "cross-site"}}, 403, "cross-site"),
    ],
)
async def test_restart_and_reset_refuse_forms_and_other_origins(
    sim: ModbusSimulatorServer, options: dict[str, Any], status: int, message: str
) -> None:
    sim.data.cells[10].value = 7
    address = sim.modbus_address
    async with http(sim) as api:
        for path in ("/api/v1/restart", "/api/v1/reset"):
            response = await api.post(path, **options)
            if path == "/api/v1/reset" and message == "malformed JSON":
                assert response.status_code == 204  # reset reads no body
                sim.data.cells[10].value = 7
                continue
            assert response.status_code == status, path
            assert message in response.json()["error"]
    assert sim.data.cells[10].value == 7 and sim.modbus_address == address


async def test_same_origin_browser_requests_are_allowed(sim: ModbusSimulatorServer) -> None:
    async with http(sim) as api:
        host = "{}:{}".format(*sim.http_address)
        headers = {"origin": f"http://{host}", "sec-fetch-site": "same-origin"}
        assert (await api.post("/api/v1/reset", headers=headers)).status_code == 204


async def test_restart_when_not_running_is_a_conflict() -> None:
    sim = simulator()
    with pytest.raises(RuntimeError, match="not running"):
        await sim.restart()


# -- OpenAPI --------------------------------------------------------------------------------------


async def test_openapi_lists_exactly_the_routes_of_api_v1(sim: ModbusSimulatorServer) -> None:
    async with http(sim) as api:
        response = await api.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    described = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    }
    routes = set()
    for route in build_app(sim).routes:
        path = getattr(route, "path", "")
        if path.startswith("/api/v1/"):
            for method in getattr(route, "methods", set()) - {"HEAD"}:
                routes.add((path.replace(":int", ""), method))
    assert described == routes
    for item in document["paths"].values():
        for operation in item.values():
            assert operation["summary"]
            assert any(code.startswith("2") for code in operation["responses"])
