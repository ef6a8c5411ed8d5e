"""ModbusSimulatorServer: its lifecycle under Trio and asyncio, and its /api/v1 HTTP API."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from trio_modbus import ConfigurationError
from trio_modbus.server import ModbusSimulatorServer
from trio_modbus.testing import raw

DEFAULT = json.loads(
    (
        Path(__file__).resolve().parents[2] / "trio_modbus" / "simulator" / "default.json"
    ).read_text()
)
TIMEOUT = 20


def config(**server: Any) -> dict[str, Any]:
    """The built-in configuration, Modbus on a free port of 127.0.0.1."""
    result = copy.deepcopy(DEFAULT)
    result["server_list"]["server"].update({"port": 0, **server})
    return result


def simulator(**options: Any) -> ModbusSimulatorServer:
    return ModbusSimulatorServer(http_host="127.0.0.1", http_port=0, config=config(), **options)


@pytest.fixture
async def running() -> AsyncIterator[ModbusSimulatorServer]:
    with trio.fail_after(TIMEOUT):
        async with simulator() as sim:
            yield sim


def http(sim: ModbusSimulatorServer, **options: Any) -> httpx.AsyncClient:
    assert sim.http_address is not None
    host, port = sim.http_address
    return httpx.AsyncClient(base_url=f"http://{host}:{port}", **options)


# -- lifecycle -----------------------------------------------------------------------------------


async def test_it_reports_started_once_modbus_and_http_are_bound(nursery: trio.Nursery) -> None:
    sim = simulator()
    assert not sim.running and sim.modbus_address is None
    with trio.fail_after(TIMEOUT):
        assert await nursery.start(sim.run_forever) is sim
        assert sim.running
        async with raw.connect(sim.modbus_address) as client:
            reply = await client.request(raw.read_holding_registers(70, 2))  # the string
            assert reply.pdu == bytes.fromhex("03 04") + b"trio"
        async with http(sim) as api:
            status = (await api.get("/api/v1/status")).json()
        assert status["modbus"]["address"] == list(sim.modbus_address)
        assert status["statistics"]["requests"] == 1
        await sim.stop()
    assert not sim.running and sim.modbus_address is None and sim.http_address is None
    sim.stop()  # idempotent, and fine once stopped
    await sim.stop()


async def test_async_with_closes_both_listeners() -> None:
    with trio.fail_after(TIMEOUT):
        async with simulator() as sim:
            modbus, web = sim.modbus_address, sim.http_address
        for address in (modbus, web):
            assert address is not None
            with pytest.raises(OSError):
                await trio.open_tcp_stream(*address)


async def test_stop_before_it_is_started_is_harmless_and_only_start_is_for_asyncio() -> None:
    sim = simulator()
    sim.stop()
    with pytest.raises(RuntimeError, match="only_start is for asyncio"):
        await sim.run_forever(only_start=True)


def test_the_seed_example_runs_under_asyncio() -> None:
    """pymodbus's example: ``await simulator.run_forever()``, ``simulator.stop()`` to end."""

    async def run_simulator() -> list[int]:
        sim = simulator()
        task = asyncio.create_task(sim.run_forever())
        while sim.modbus_address is None:
            await asyncio.sleep(0.01)
        from pymodbus.client import AsyncModbusTcpClient

        client = AsyncModbusTcpClient("127.0.0.1", port=sim.modbus_address[1])
        await client.connect()
        reply = await client.read_holding_registers(10, count=2, device_id=1)
        client.close()
        await sim.stop()
        await task
        assert not sim.running
        return reply.registers

    assert asyncio.run(asyncio.wait_for(run_simulator(), TIMEOUT)) == [0, 0]


def test_only_start_returns_once_started_under_asyncio() -> None:
    async def main() -> None:
        sim = simulator()
        await sim.run_forever(only_start=True)
        assert sim.running and sim.http_address is not None
        await sim.stop()
        assert not sim.running

    asyncio.run(asyncio.wait_for(main(), TIMEOUT))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"http_port": 70000}, "http_port=70000; give 0..65535"),
        ({"modbus_server": "nope"}, "server_list: no entry 'nope'; valid: 'server'"),
        ({"json_file": "x.json", "config": {}}, "give json_file or config, not both"),
    ],
)
def test_bad_arguments_are_refused_by_the_constructor(options: dict, message: str) -> None:
    options.setdefault("config", config())
    with pytest.raises(ConfigurationError, match=message):
        ModbusSimulatorServer(**options)


# -- the HTTP API --------------------------------------------------------------------------------


async def test_a_fault_posted_over_http_changes_exactly_the_targeted_replies(
    running: ModbusSimulatorServer,
) -> None:
    async with http(running) as api, raw.connect(running.modbus_address) as client:
        rule = {"action": "exception", "code": 6, "function": 3, "address": "10..20", "times": 2}
        created = await api.post("/api/v1/faults", json=rule)
        assert created.status_code == 201
        rule_id = created.json()["id"]
        assert created.json()["remaining"] == 2
        replies = [
            await client.request(raw.read_holding_registers(address, 1))
            for address in (15, 30, 10, 12)
        ]
        assert [r.exception_code for r in replies] == [6, None, 6, None]
        assert (await api.get("/api/v1/faults")).json() == {"faults": []}  # spent, gone
        calls = (await api.get("/api/v1/calls")).json()["calls"]
        assert [c["rule_id"] for c in calls] == [rule_id, None, rule_id, None]
        assert calls[0]["function"] == "read_holding_registers"
        assert calls[0]["address"] == 15 and calls[0]["count"] == 1
        assert calls[0]["reply_hex"] == "00 01 00 00 00 03 01 83 06"
        only_errors = (await api.get("/api/v1/calls", params={"errors": "1"})).json()
        assert [c["seq"] for c in only_errors["calls"]] == [1, 3]


async def test_fault_rules_can_be_listed_and_deleted(running: ModbusSimulatorServer) -> None:
    async with http(running) as api:
        first = (await api.post("/api/v1/faults", json={"action": "no_reply"})).json()
        second = (await api.post("/api/v1/faults", json={"action": "delay", "seconds": 2})).json()
        listed = (await api.get("/api/v1/faults")).json()["faults"]
        assert [r["id"] for r in listed] == [first["id"], second["id"]]
        assert listed[1]["seconds"] == 2 and listed[1]["phase"] == "before"
        assert (await api.delete(f"/api/v1/faults/{first['id']}")).status_code == 204
        assert (await api.delete(f"/api/v1/faults/{first['id']}")).status_code == 404
        assert (await api.delete("/api/v1/faults")).status_code == 204
        assert (await api.get("/api/v1/faults")).json() == {"faults": []}


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b"{bad", {"content-type": "application/json"}, 400, "malformed JSON"),
        (
            b"action=busy",
            {"content-type": "application/x-www-form-urlencoded"},
            400,
            "send the body as application/json",
        ),
        (b"[1]", {"content-type": "application/json"}, 400, "a JSON object"),
        (
            b'{"action": "explode"}',
            {"content-type": "application/json"},
            422,
            "action = 'explode'; allowed: delay",
        ),
        (
            b'{"action": "busy", "unit": "x"}',
            {"content-type": "application/json"},
            422,
            "fault unit = 'x'",
        ),
    ],
)
async def test_a_bad_fault_is_refused_with_a_message_and_changes_nothing(
    running: ModbusSimulatorServer, body: bytes, headers: dict, status: int, message: str
) -> None:
    async with http(running) as api:
        response = await api.post("/api/v1/faults", content=body, headers=headers)
        assert response.status_code == status
        assert message in response.json()["error"]
        assert (await api.get("/api/v1/faults")).json() == {"faults": []}


async def test_calls_can_be_filtered_paged_and_cleared(running: ModbusSimulatorServer) -> None:
    async with http(running) as api, raw.connect(running.modbus_address) as client:
        await client.pipeline([raw.read_holding_registers(a, 1) for a in range(5)])
        await client.request(raw.read_coils(3, 2))
        by_function = (await api.get("/api/v1/calls", params={"function": "0x01"})).json()
        assert [c["function"] for c in by_function["calls"]] == ["read_coils"]
        page = (await api.get("/api/v1/calls", params={"since": 2, "limit": 2})).json()
        assert [c["seq"] for c in page["calls"]] == [5, 6] and page["total"] == 6
        by_address = (await api.get("/api/v1/calls", params={"address": 4})).json()
        assert [c["seq"] for c in by_address["calls"]] == [5, 6]  # coils 3..4 touch 4 too
        bad = await api.get("/api/v1/calls", params={"limit": "x"})
        assert bad.status_code == 400
        assert (await api.delete("/api/v1/calls")).status_code == 204
        assert (await api.get("/api/v1/calls")).json()["total"] == 0


async def test_a_token_guards_the_api() -> None:
    with trio.fail_after(TIMEOUT):
        async with simulator(token="s3cret") as sim, http(sim) as api:
            assert (await api.get("/api/v1/status")).status_code == 401
            wrong = {"authorization": "Bearer nope"}
            assert (await api.get("/api/v1/status", headers=wrong)).status_code == 401
            right = {"authorization": "Bearer s3cret"}
            assert (await api.get("/api/v1/status", headers=right)).status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "::", "example.com"])
def test_a_network_reachable_http_server_needs_a_token(host: str) -> None:
    with pytest.raises(ConfigurationError, match="give token="):
        ModbusSimulatorServer(http_host=host, config=config())
    ModbusSimulatorServer(http_host=host, config=config(), token="t")
    ModbusSimulatorServer(http_host=host, config=config(), allow_unauthenticated=True)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.0.0.2", "::1", "[::1]"])
def test_loopback_needs_no_token(host: str) -> None:
    ModbusSimulatorServer(http_host=host, config=config())


async def test_the_log_endpoint_and_the_log_file_get_the_package_log(tmp_path: Path) -> None:
    import logging

    package_log = logging.getLogger("trio_modbus")
    level = package_log.level
    package_log.setLevel(logging.INFO)
    try:
        with trio.fail_after(TIMEOUT):
            async with simulator(log_file=tmp_path / "sim.log") as sim, http(sim) as api:
                lines = (await api.get("/api/v1/log")).json()["lines"]
                started = [line for line in lines if line["message"].startswith("simulator:")]
                assert started and started[0]["logger"] == "trio_modbus.simulator"
                since = lines[-1]["seq"]
                assert (await api.get("/api/v1/log", params={"since": since})).json() == {
                    "lines": []
                }
    finally:
        package_log.setLevel(level)
    assert "INFO trio_modbus.simulator: simulator: Modbus on" in (tmp_path / "sim.log").read_text()
    assert sim.log_buffer not in package_log.handlers


async def test_registers_are_read_and_forced_typed_over_http_and_seen_by_a_client(
    running: ModbusSimulatorServer,
) -> None:
    async with http(running) as api, raw.connect(running.modbus_address) as client:
        put = await api.put("/api/v1/registers/60", json={"value": 3.5, "type": "float32"})
        assert put.status_code == 200 and put.json()["value"] == 3.5
        reply = await client.request(raw.read_holding_registers(60, 2))
        assert reply.registers() == [0x4060, 0x0000]  # big-endian words of 3.5
        await api.put("/api/v1/registers/10", json={"value": -2, "type": "int16"})
        assert (await client.request(raw.read_holding_registers(10, 1))).registers() == [0xFFFE]
        got = await api.get("/api/v1/registers/10", params={"type": "int16"})
        assert got.json() == {"address": 10, "type": "int16", "value": -2}
        little = await api.put(
            "/api/v1/registers/52",
            json={"value": 0x12345678, "type": "uint32", "word_order": "little"},
        )
        assert little.status_code == 200
        assert (await client.request(raw.read_holding_registers(52, 2))).registers() == [
            0x5678,
            0x1234,
        ]
        await client.request(raw.write_register(11, 7))  # a client write, seen over HTTP
        cells = (await api.get("/api/v1/cells", params={"start": 10, "count": 2})).json()["cells"]
        assert [c["value"] for c in cells] == [0xFFFE, 7] and cells[1]["writes"] == 1
        assert (await api.post("/api/v1/reset")).status_code == 204
        assert (await client.request(raw.read_holding_registers(10, 2))).registers() == [0, 0]


@pytest.mark.parametrize(
    ("method", "path", "options", "status", "message"),
    [
        ("get", "/api/v1/registers/10", {"params": {"type": "uint7"}}, 400, "type='uint7'"),
        ("get", "/api/v1/registers/10", {"params": {"word_order": "x"}}, 400, "word_order='x'"),
        ("get", "/api/v1/registers/99", {"params": {"type": "uint32"}}, 404, "not all in"),
        ("put", "/api/v1/registers/10", {"json": {"v": 1}}, 400, '{"value": ...}'),
        ("put", "/api/v1/registers/10", {"json": {"value": 70000, "type": "uint16"}}, 400, ""),
        ("put", "/api/v1/registers/10", {"json": {"value": "x", "type": "uint16"}}, 400, ""),
        ("get", "/api/v1/cells", {"params": {"start": 5000}}, 400, "the device has"),
    ],
)
async def test_bad_register_requests_get_4xx_and_change_nothing(
    running: ModbusSimulatorServer,
    method: str,
    path: str,
    options: dict,
    status: int,
    message: str,
) -> None:
    before = [cell.value for cell in running.data.cells]
    async with http(running) as api:
        response = await getattr(api, method)(path, **options)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert [cell.value for cell in running.data.cells] == before


async def test_under_trio_a_pymodbus_client_and_http_query_it(
    running: ModbusSimulatorServer,
) -> None:
    from pymodbus.client import ModbusTcpClient

    def read() -> list[int]:
        host, port = running.modbus_address
        with ModbusTcpClient(host, port=port) as client:
            client.write_register(12, 4321, device_id=1)
            return client.read_holding_registers(12, count=1, device_id=1).registers

    assert await trio.to_thread.run_sync(read) == [4321]
    async with http(running) as api:
        value = (await api.get("/api/v1/registers/12", params={"type": "uint16"})).json()
        assert value["value"] == 4321
        calls = (await api.get("/api/v1/calls")).json()["calls"]
        assert [c["function"] for c in calls] == [
            "write_single_register",
            "read_holding_registers",
        ]


async def test_our_trio_modbus_key_arms_faults_and_sets_the_token() -> None:
    document = config()
    document["trio_modbus"] = {
        "faults": [{"action": "busy", "function": 3, "times": 1}],
        "token": "from-the-file",
    }
    sim = ModbusSimulatorServer(http_host="0.0.0.0", http_port=0, config=document)
    assert sim.token == "from-the-file"
    [rule] = sim.device.faults.rules
    assert rule.times == 1
    sim.http_host = "127.0.0.1"
    with trio.fail_after(TIMEOUT):
        async with sim, raw.connect(sim.modbus_address) as client:
            assert (await client.request(raw.read_holding_registers(0, 1))).exception_code == 6
            assert (await client.request(raw.read_holding_registers(0, 1))).exception_code is None


@pytest.mark.parametrize(
    ("extension", "message"),
    [
        ({"colour": 1}, "trio_modbus.colour: unknown key; valid keys: 'faults', 'token'"),
        ({"faults": [{"action": "explode"}]}, "trio_modbus.faults: fault #1: action = 'explode'"),
        ({"faults": {"action": "busy"}}, "trio_modbus.faults"),
        ({"token": 5}, "trio_modbus.token"),
    ],
)
def test_a_bad_trio_modbus_key_is_refused_naming_its_path(extension: dict, message: str) -> None:
    document = config()
    document["trio_modbus"] = extension
    with pytest.raises(ConfigurationError, match=message):
        ModbusSimulatorServer(config=document)


async def test_stop_from_another_thread_s_trio_run_waits_for_the_end() -> None:
    import threading

    sim = simulator()
    thread = threading.Thread(target=trio.run, args=(sim.run_forever,))
    thread.start()
    with trio.fail_after(TIMEOUT):
        while sim.http_address is None:
            await trio.sleep(0.01)
        await sim.stop()  # a worker thread waits for the simulator's own run to end
        assert not sim.running
    thread.join(TIMEOUT)
    assert not thread.is_alive()
