"""``trio_modbus.on_write``: values stored and fault rules armed when a client writes a cell."""

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
from trio_modbus.simulator import ModbusSimulatorServer, load_config
from trio_modbus.testing import raw

from ._support import document

TIMEOUT = 20

# Shared blocks of 20 cells: cells 0..7 writable; cell 0 is also coils 0..15.
SECTIONS: dict[str, Any] = {"uint16": [{"addr": [0, 19], "value": 0}], "write": [[0, 7]]}


def with_on_write(on_write: list[Any], **extra: Any) -> dict[str, Any]:
    doc = document({"port": 0}, **SECTIONS)
    doc["trio_modbus"] = {"on_write": copy.deepcopy(on_write), **extra}
    return doc


@asynccontextmanager
async def running(doc: dict[str, Any]) -> AsyncIterator[ModbusSimulatorServer]:
    with trio.fail_after(TIMEOUT):
        async with ModbusSimulatorServer(http_host="127.0.0.1", http_port=0, config=doc) as sim:
            yield sim


async def ask(sim: ModbusSimulatorServer, *pdus: bytes) -> list[bytes]:
    async with raw.connect(sim.modbus_address) as client:
        return [(await client.request(pdu)).pdu for pdu in pdus]


@pytest.mark.parametrize(
    "pdu",
    [
        raw.write_register(3, 7),  # 06
        raw.write_registers(2, [1, 2, 3]),  # 16 (0x10)
        raw.mask_write_register(3, 0x00FF, 0x0100),  # 22 (0x16)
        raw.read_write_registers(0, 1, 3, [9]),  # 23 (0x17)
    ],
    ids=["06", "10", "16", "17"],
)
async def test_a_register_write_touching_the_cell_stores_the_values(pdu: bytes) -> None:
    entry = {
        "device": "device",
        "address": 3,
        "set": [
            {"address": 10, "value": 1, "type": "uint16"},
            {"address": 12, "value": 2.5, "type": "float32"},
            {"address": 14, "value": -2, "type": "int16"},
        ],
    }
    async with running(with_on_write([entry])) as sim:
        [reply] = await ask(sim, pdu)
        assert not reply[0] & 0x80
        assert sim.data.get(10, "uint16") == 1
        assert sim.data.get(12, "float32") == 2.5
        assert sim.data.get(14, "int16") == -2
        [read] = await ask(sim, raw.read_holding_registers(12, 2))
        assert read[2:] == struct.pack(">f", 2.5)


async def test_coil_writes_touch_the_cell_holding_the_bit() -> None:
    entry = {"device": "device", "address": 1, "set": [{"address": 10, "value": 5}]}
    async with running(with_on_write([entry])) as sim:
        await ask(sim, raw.write_coil(3, True))  # 05: coil 3 is in cell 0
        assert sim.data.get(10) == 0
        await ask(sim, raw.write_coil(17, True))  # cell 1
        assert sim.data.get(10) == 5
        sim.data.set(10, 0)
        await ask(sim, raw.write_coils(14, [1, 0, 1]))  # 0F: cells 0 and 1
        assert sim.data.get(10) == 5


async def test_other_writes_reads_and_refused_writes_do_nothing() -> None:
    entry = {"device": "device", "address": 3, "set": [{"address": 10, "value": 1}]}
    async with running(with_on_write([entry])) as sim:
        replies = await ask(
            sim,
            raw.write_register(4, 1),
            raw.read_holding_registers(0, 8),
            raw.write_registers(3, [1] * 6),  # 8 is read-only: nothing written
        )
        assert replies[2][0] == 0x90
        assert sim.data.get(10) == 0
        sim.data.set(3, 9)  # set() is not a Modbus write
        assert sim.data.get(10) == 0


async def test_the_word_order_is_the_devices() -> None:
    entry = {
        "device": "device",
        "address": 0,
        "set": [{"address": 10, "value": 0x12345678, "type": "uint32"}],
    }
    doc = with_on_write([entry], devices={"device": {"word_order": "little"}})
    async with running(doc) as sim:
        await ask(sim, raw.write_register(0, 1))
        assert [cell.value for cell in sim.data.cells[10:12]] == [0x5678, 0x1234]


async def test_a_write_arms_the_fault_for_the_next_requests() -> None:
    fault = {"action": "exception", "code": 6, "function": 3, "times": 1}
    entry = {"device": "device", "address": 5, "fault": fault}
    async with running(with_on_write([entry])) as sim:
        before, write, after, again = await ask(
            sim,
            raw.read_holding_registers(0, 1),
            raw.write_register(5, 1),
            raw.read_holding_registers(0, 1),
            raw.read_holding_registers(0, 1),
        )
        assert before[0] == 0x03 and write[0] == 0x06
        assert after == bytes([0x83, 0x06])
        assert again[0] == 0x03  # times: 1, spent
        await ask(sim, raw.write_register(5, 2))  # each write arms a new copy
        assert len(sim.device.faults.rules) == 1


async def test_each_unit_runs_its_own_entries() -> None:
    entry = {"device": "device", "address": 0, "set": [{"address": 10, "value": 1}]}
    doc = with_on_write([entry], units={"1": "device", "2": "device"})
    async with running(doc) as sim:
        async with raw.connect(sim.modbus_address) as client:
            await client.request(raw.write_register(0, 1), unit=2)
        assert sim.units[2].get(10) == 1
        assert sim.units[1].get(10) == 0


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"address": 1, "set": []}, "trio_modbus.on_write[0]: missing 'device'"),
        ({"device": "device", "address": 1}, "give 'set', 'fault' and/or 'listener'"),
        (
            {"device": "meter", "address": 1, "set": []},
            "trio_modbus.on_write[0].device: 'meter' is not in device_list; valid: 'device'",
        ),
        (
            {"device": "device", "address": 20, "set": []},
            "trio_modbus.on_write[0].address: expected an integer in 0..19",
        ),
        (
            {"device": "device", "address": 1, "then": []},
            "trio_modbus.on_write[0].then: unknown key; valid keys: 'device', 'address'",
        ),
        (
            {"device": "device", "address": 1, "set": [{"address": 1, "value": 1, "type": "u8"}]},
            "trio_modbus.on_write[0].set[0].type: 'u8' is not a value type; valid: 'bits'",
        ),
        (
            {"device": "device", "address": 1, "set": [{"address": 1, "value": 70000}]},
            "trio_modbus.on_write[0].set[0].value:",
        ),
        (
            {
                "device": "device",
                "address": 1,
                "set": [{"address": 19, "value": 1.0, "type": "float32"}],
            },
            "trio_modbus.on_write[0].set[0].address: a float32 of 2 cells at 19 leaves the device",
        ),
        (
            {"device": "device", "address": 1, "fault": {"action": "explode"}},
            "trio_modbus.on_write[0].fault: fault #1: action = 'explode'; allowed: ",
        ),
        (
            {"device": "device", "address": 1, "set": {}},
            "trio_modbus.on_write[0].set: expected a list",
        ),
    ],
)
def test_errors_name_the_path_and_the_choices(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(with_on_write([entry]))
    assert message in str(caught.value)


def test_a_bad_entry_builds_nothing() -> None:
    good = {"device": "device", "address": 1, "set": [{"address": 10, "value": 1}]}
    bad = {"device": "device", "address": 1, "set": [{"address": 10}]}
    with pytest.raises(ConfigurationError, match=r"on_write\[1\]\.set\[0\]: missing 'value'"):
        ModbusSimulatorServer(http_port=0, config=with_on_write([good, bad]))


def test_defaults_are_filled_in() -> None:
    config = load_config(
        with_on_write([{"device": "device", "address": 2, "set": [{"address": 3, "value": 4}]}])
    )
    assert config.on_write == (
        {
            "device": "device",
            "address": 2,
            "set": [{"address": 3, "value": 4, "type": "uint16"}],
            "fault": None,
            "listener": None,
        },
    )


async def test_the_config_endpoint_keeps_the_entries_and_they_load_again() -> None:
    entries = [
        {
            "device": "device",
            "address": 3,
            "set": [{"address": 12, "value": 2.5, "type": "float32"}],
            "fault": {"action": "exception", "code": 6, "times": 1},
        },
        {"device": "device", "address": 4, "set": [{"address": 10, "value": 1, "type": "uint16"}]},
    ]
    async with running(with_on_write(entries)) as sim:
        assert sim.http_address is not None
        host, port = sim.http_address
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as api:
            got = (await api.get("/api/v1/config")).json()
    assert got["trio_modbus"]["on_write"] == entries
    assert load_config(got).on_write == load_config(with_on_write(entries)).on_write


# -- the scenario timeline -----------------------------------------------------------------------


def with_scenario(steps: list[Any], **extra: Any) -> dict[str, Any]:
    doc = document({"port": 0}, **SECTIONS)
    doc["trio_modbus"] = {"scenario": copy.deepcopy(steps), **extra}
    return doc


async def read_one(sim: ModbusSimulatorServer, address: int) -> bytes:
    [reply] = await ask(sim, raw.read_holding_registers(address, 1))
    return reply


async def test_timed_steps_run_on_trios_clock(mock_clock: trio.testing.MockClock) -> None:
    steps = [
        {"at": 2, "clear_faults": True},
        {"at": 1.0, "set": [{"address": 10, "value": 7}]},
        {"at": 1.5, "fault": {"action": "exception", "code": 6, "function": 3}},
        {"at": 0, "set": [{"address": 12, "value": 1.5, "type": "float32"}]},
    ]
    async with running(with_scenario(steps)) as sim:

        async def at(seconds: float) -> None:
            mock_clock.jump(seconds - (trio.current_time() - start))
            await trio.testing.wait_all_tasks_blocked()

        start = trio.current_time()
        await at(0)
        assert sim.data.get(12, "float32") == 1.5
        assert await read_one(sim, 10) == bytes.fromhex("03 02 0000")
        await at(0.99)
        assert sim.data.get(10) == 0
        await at(1.0)
        assert await read_one(sim, 10) == bytes.fromhex("03 02 0007")
        await at(1.5)
        assert await read_one(sim, 10) == bytes([0x83, 0x06])
        await at(2)
        assert await read_one(sim, 10) == bytes.fromhex("03 02 0007")
        assert sim.device.faults.rules == []


async def test_request_steps_count_the_requests_served() -> None:
    steps = [
        {"after_requests": 2, "fault": {"action": "exception", "code": 4, "times": 1}},
        {"after_requests": 4, "set": [{"address": 10, "value": 3}]},
    ]
    async with running(with_scenario(steps)) as sim:
        replies = await ask(sim, *[raw.read_holding_registers(10, 1)] * 5)
        await trio.testing.wait_all_tasks_blocked()
        assert replies[:3] == [
            bytes.fromhex("03 02 0000"),
            bytes.fromhex("03 02 0000"),
            bytes([0x83, 0x04]),  # the 3rd request: armed after the 2nd
        ]
        assert replies[4] == bytes.fromhex("03 02 0003")  # set after the 4th


async def test_restart_starts_the_scenario_again(autojump_clock: object) -> None:
    steps = [{"at": 1, "set": [{"address": 10, "value": 5}]}]
    async with running(with_scenario(steps)) as sim:
        await trio.sleep(1.5)
        assert sim.data.get(10) == 5
        await sim.restart()
        assert sim.data.get(10) == 0
        await trio.sleep(1.5)
        assert sim.data.get(10) == 5


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"set": []}, "trio_modbus.scenario[0]: give one trigger; valid: 'at', 'after_requests'"),
        ({"at": 1, "after_requests": 2, "clear_faults": True}, "give one trigger"),
        ({"at": -1, "clear_faults": True}, "trio_modbus.scenario[0].at: expected seconds >= 0"),
        ({"after_requests": 0, "clear_faults": True}, "scenario[0].after_requests: expected an"),
        (
            {"at": 1},
            "trio_modbus.scenario[0]: give 'set', 'fault', 'clear_faults' and/or 'listener'",
        ),
        ({"at": 1, "clear_faults": "yes"}, "scenario[0].clear_faults: expected true or false"),
        ({"at": 1, "device": "x", "clear_faults": True}, ".device: 'x' is not in device_list"),
        (
            {"at": 1, "wait": 2},
            "scenario[0].wait: unknown key; valid keys: 'at', 'after_requests'",
        ),
        ({"at": 1, "set": [{"address": 99, "value": 1}]}, "scenario[0].set[0].address: expected"),
        ({"at": 1, "fault": {"action": "nope"}}, "trio_modbus.scenario[0].fault: fault #1"),
    ],
)
def test_scenario_errors_name_the_path_and_the_choices(step: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(with_scenario([step]))
    assert message in str(caught.value)


def test_set_needs_a_device_when_there_are_several() -> None:
    doc = with_scenario([{"at": 1, "set": [{"address": 1, "value": 1}]}])
    doc["device_list"]["other"] = doc["device_list"]["device"]
    with pytest.raises(
        ConfigurationError, match=r"scenario\[0\]: missing 'device'.*'device', 'other'"
    ):
        load_config(doc)


async def test_the_config_endpoint_keeps_the_scenario() -> None:
    steps = [
        {"at": 0.0, "set": [{"address": 12, "value": 2.5, "type": "float32"}], "device": "device"},
        {"after_requests": 3, "fault": {"action": "exception", "code": 6}},
        {"at": 2.0, "clear_faults": True, "listener": "stop"},
        {"at": 3.0, "listener": "start"},
    ]
    async with running(with_scenario(steps)) as sim:
        assert sim.http_address is not None
        host, port = sim.http_address
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as api:
            got = (await api.get("/api/v1/config")).json()
    assert got["trio_modbus"]["scenario"] == steps
    assert load_config(got).scenario == load_config(with_scenario(steps)).scenario


# -- stopping and starting the Modbus listener ----------------------------------------------------


async def refused(address: tuple[str, int]) -> bool:
    """Whether a TCP connection to ``address`` is refused."""
    try:
        stream = await trio.open_tcp_stream(*address)
    except OSError:
        return True
    await stream.aclose()
    return False


async def test_scenario_steps_stop_and_start_the_listener_at_the_same_port(
    mock_clock: trio.testing.MockClock,
) -> None:
    steps = [
        {"at": 1, "set": [{"address": 10, "value": 9}], "listener": "stop"},
        {"at": 2, "listener": "start"},
    ]
    async with running(with_scenario(steps)) as sim:
        start = trio.current_time()
        address = sim.modbus_address
        async with raw.connect(address) as client:
            assert (await client.request(raw.read_holding_registers(10, 1))).pdu == bytes.fromhex(
                "03 02 0000"
            )
            mock_clock.jump(1 - (trio.current_time() - start))
            await trio.testing.wait_all_tasks_blocked()
            assert sim.data.get(10) == 9  # the step's values
            assert await refused(address)  # no new clients
            with pytest.raises(raw.ConnectionClosed):  # this one gets the end of the stream
                await client.request(raw.read_holding_registers(10, 1))
        await trio.testing.wait_all_tasks_blocked()
        assert not sim.listening
        mock_clock.jump(1)
        await trio.testing.wait_all_tasks_blocked()
        assert sim.listening and sim.modbus_address == address
        assert await read_one(sim, 10) == bytes.fromhex("03 02 0009")
        assert sorted(sim.scenario_done) == [0, 1]


async def test_a_write_can_stop_the_listener_after_its_answer() -> None:
    on_write = [{"device": "device", "address": 5, "listener": "stop"}]
    async with running(with_on_write(on_write)) as sim:
        address = sim.modbus_address
        assert await ask(sim, raw.write_register(5, 1)) == [raw.write_register(5, 1)]
        await trio.testing.wait_all_tasks_blocked()  # the stop, run once the write answered
        assert not sim.listening
        assert await refused(address)
        assert sim.data.get(5) == 1
        assert sim.http_address is not None
        host, port = sim.http_address
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as api:
            status = (await api.get("/api/v1/status")).json()
            assert status["modbus"]["listening"] is False
            answer = await api.post("/api/v1/listener", json={"listening": True})
            assert answer.status_code == 200
            assert answer.json()["modbus"] == {
                "comm": "tcp",
                "address": list(address),
                "listening": True,
                "clients": [],
            }
        assert await read_one(sim, 5) == bytes.fromhex("03 02 0001")


async def test_the_listener_endpoint_stops_starts_and_refuses_bad_bodies() -> None:
    async with running(document({"port": 0}, **SECTIONS)) as sim:
        assert sim.http_address is not None
        host, port = sim.http_address
        address = sim.modbus_address
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as api:
            for body, message in [
                ({"listening": "no"}, "listening: 'no' is not true or false"),
                ({"listening": False, "x": 1}, '{"listening": true}'),
                ([], '{"listening": true}'),
            ]:
                answer = await api.post("/api/v1/listener", json=body)
                assert answer.status_code == 400 and message in answer.json()["error"]
            form = await api.post("/api/v1/listener", data={"listening": "false"})
            assert form.status_code == 400
            assert sim.listening
            for _ in range(2):  # stopping twice is stopping once
                answer = await api.post("/api/v1/listener", json={"listening": False})
                assert answer.json()["modbus"]["listening"] is False
            assert await refused(address)
            for _ in range(2):
                answer = await api.post("/api/v1/listener", json={"listening": True})
                assert answer.json()["modbus"]["listening"] is True
        assert await read_one(sim, 0) == bytes.fromhex("03 02 0000")


async def test_restart_with_the_listener_stopped_opens_it() -> None:
    async with running(document({"port": 0}, **SECTIONS)) as sim:
        await sim.stop_listener()
        await sim.restart()
        assert sim.listening
        assert await read_one(sim, 0) == bytes.fromhex("03 02 0000")


async def test_listener_calls_need_a_running_simulator() -> None:
    sim = ModbusSimulatorServer(http_port=0, config=document({"port": 0}, **SECTIONS))
    assert not sim.listening
    for call in (sim.stop_listener, sim.start_listener):
        with pytest.raises(RuntimeError, match="not running"):
            await call()


async def test_the_scenario_endpoint_shows_each_steps_state(autojump_clock: object) -> None:
    steps = [
        {"at": 1, "set": [{"address": 10, "value": 5}]},
        {"after_requests": 100, "clear_faults": True},
    ]
    async with running(with_scenario(steps)) as sim:
        await trio.sleep(1.5)
        assert sim.http_address is not None
        host, port = sim.http_address
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as api:
            got = (await api.get("/api/v1/scenario")).json()
    assert got["elapsed"] >= 1.5 and got["requests"] == 0
    assert [(s["index"], s["done"], s["ran_at"]) for s in got["steps"]] == [
        (0, True, 1.0),
        (1, False, None),
    ]
    assert got["steps"][0]["set"] == [{"address": 10, "value": 5, "type": "uint16"}]


@pytest.mark.parametrize("where", ["on_write", "scenario"])
def test_a_listener_action_is_stop_or_start(where: str) -> None:
    if where == "on_write":
        doc = with_on_write([{"device": "device", "address": 1, "listener": "pause"}])
        path = "trio_modbus.on_write[0].listener"
    else:
        doc = with_scenario([{"at": 1, "listener": "pause"}])
        path = "trio_modbus.scenario[0].listener"
    with pytest.raises(ConfigurationError) as caught:
        load_config(doc)
    assert str(caught.value) == (
        f"{path}: 'pause' is not a listener action; valid: 'stop', 'start'"
    )


async def test_the_status_lists_the_connected_clients() -> None:
    async with running(document({"port": 0}, **SECTIONS)) as sim:
        assert sim.http_address is not None
        host, port = sim.http_address
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as api:
            async with raw.connect(sim.modbus_address) as client:
                await client.request(raw.read_holding_registers(0, 1))
                status = (await api.get("/api/v1/status")).json()
                [peer] = status["modbus"]["clients"]
                assert peer[0] == "127.0.0.1" and isinstance(peer[1], int)
            await trio.testing.wait_all_tasks_blocked()  # the server saw the client leave
            assert (await api.get("/api/v1/status")).json()["modbus"]["clients"] == []


async def test_concurrent_restarts_and_listener_calls_leave_one_listener() -> None:
    """Each waits for the one before: no listener is left over, none answers 500."""
    async with running(document({"port": 0}, **SECTIONS)) as sim:
        assert sim.http_address is not None
        host, port = sim.http_address
        address = sim.modbus_address
        answers: list[int] = []
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as api:

            async def post(path: str, body: Any = None) -> None:
                answers.append((await api.post(path, json=body)).status_code)

            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(post, "/api/v1/restart")
                nursery.start_soon(post, "/api/v1/listener", {"listening": False})
                for _ in range(2):
                    nursery.start_soon(post, "/api/v1/listener", {"listening": True})
            assert answers == [200] * 6
            assert sim.modbus_address == address
            await api.post("/api/v1/listener", json={"listening": False})
        assert await refused(address)  # nothing left listening beside the one stopped
        await sim.start_listener()
        assert await read_one(sim, 0) == bytes.fromhex("03 02 0000")
