"""Fault rules armed over HTTP take effect on the wire: Modbus/TCP, and RTU on a socat pty."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from trio_modbus.server import ModbusSimulatorServer
from trio_modbus.testing import raw

from .._pty import SocatPair

DEFAULT = json.loads(
    (
        Path(__file__).resolve().parents[2] / "trio_modbus" / "simulator" / "default.json"
    ).read_text()
)
TIMEOUT = 20
QUIET = 0.3  # seconds of silence taken as "no reply" on a real link
READ_10 = raw.read_holding_registers(10, 1)
WRITE_10 = raw.write_register(10, 77)


def simulator(**server: Any) -> ModbusSimulatorServer:
    config = copy.deepcopy(DEFAULT)
    config["server_list"]["server"].update({"port": 0, **server})
    return ModbusSimulatorServer(http_host="127.0.0.1", http_port=0, config=config)


@pytest.fixture
async def tcp() -> AsyncIterator[ModbusSimulatorServer]:
    with trio.fail_after(TIMEOUT):
        async with simulator() as sim:
            yield sim


async def arm(sim: ModbusSimulatorServer, rule: dict[str, Any]) -> int:
    assert sim.http_address is not None
    host, port = sim.http_address
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as api:
        created = await api.post("/api/v1/faults", json={"times": 1, **rule})
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def mbap(pdu: bytes, tid: int = 1) -> bytes:
    return raw.mbap(pdu, tid=tid)


# What the client sees for one write of register 10 (tid 1), and whether the write happened.
CASES: list[tuple[dict[str, Any], object, bool]] = [
    ({"action": "exception", "code": 4}, mbap(b"\x86\x04"), False),
    ({"action": "exception", "code": 4, "phase": "after"}, mbap(b"\x86\x04"), True),
    ({"action": "busy"}, mbap(b"\x86\x06"), False),
    ({"action": "no_reply"}, b"", False),
    ({"action": "no_reply", "phase": "after"}, b"", True),
    ({"action": "delay", "seconds": 0.05}, mbap(WRITE_10), True),
    ({"action": "substitute", "pdu": "06 000a 0001"}, mbap(bytes.fromhex("06000a0001")), False),
    ({"action": "wrong_transaction_id"}, mbap(WRITE_10, tid=2), True),
    ({"action": "wrong_unit", "reply_unit": 9}, raw.mbap(WRITE_10, unit=9), True),
    ({"action": "corrupt_header"}, bytes.fromhex("0001 ffff 0006 01") + WRITE_10, True),
    ({"action": "truncate", "keep": 4}, mbap(WRITE_10)[:4], True),
    ({"action": "duplicate"}, mbap(WRITE_10) * 2, True),
    ({"action": "split", "pieces": 2, "gap": 0.01}, mbap(WRITE_10), True),
    ({"action": "close"}, "fin", False),
    ({"action": "reset", "phase": "after"}, "rst", True),
]


@pytest.mark.parametrize(("rule", "seen", "written"), CASES, ids=lambda v: str(v))
async def test_a_rule_armed_over_http_acts_on_the_next_tcp_request(
    tcp: ModbusSimulatorServer, rule: dict[str, Any], seen: object, written: bool
) -> None:
    rule_id = await arm(tcp, rule)
    with trio.fail_after(TIMEOUT):
        async with raw.connect(tcp.modbus_address) as client:
            await client.send_bytes(mbap(WRITE_10))
            try:
                data = b""
                while True:
                    chunk = await client.receive_bytes(timeout=QUIET)
                    if not chunk:
                        break
                    data += chunk
                outcome: object = data
            except raw.ConnectionClosed as closed:
                outcome = "rst" if closed.reset else "fin"
    assert outcome == seen
    assert (tcp.data.get(10, "uint16") == 77) == written
    [record] = tcp.device.recorder
    assert record.rule_id == rule_id
    assert tcp.device.faults.rules == []  # spent: gone


def rtu(pdu: bytes, unit: int = 1) -> bytes:
    return raw.rtu(pdu, unit=unit)


BAD_CRC = rtu(WRITE_10)[:-1] + bytes([rtu(WRITE_10)[-1] ^ 0xFF])

# The same on RTU over a serial line, where a fault without its field on RTU is noted as not
# applied, and a line cannot be closed or reset (no reply instead, noted).
RTU_CASES: list[tuple[dict[str, Any], bytes, bool, str]] = [
    ({"action": "exception", "code": 4}, rtu(b"\x86\x04"), False, ""),
    ({"action": "exception", "code": 4, "phase": "after"}, rtu(b"\x86\x04"), True, ""),
    ({"action": "busy"}, rtu(b"\x86\x06"), False, ""),
    ({"action": "no_reply"}, b"", False, ""),
    ({"action": "no_reply", "phase": "after"}, b"", True, ""),
    ({"action": "delay", "seconds": 0.05}, rtu(WRITE_10), True, ""),
    ({"action": "substitute", "pdu": "06 000a 0001"}, rtu(bytes.fromhex("06000a0001")), False, ""),
    ({"action": "wrong_transaction_id"}, rtu(WRITE_10), True, "not applied"),
    ({"action": "wrong_unit", "reply_unit": 9}, rtu(WRITE_10, unit=9), True, ""),
    ({"action": "corrupt_checksum"}, BAD_CRC, True, ""),
    ({"action": "corrupt_header"}, rtu(WRITE_10), True, "not applied"),
    ({"action": "truncate", "keep": 4}, rtu(WRITE_10)[:4], True, ""),
    ({"action": "duplicate"}, rtu(WRITE_10) * 2, True, ""),
    ({"action": "split", "pieces": 2, "gap": 0.01}, rtu(WRITE_10), True, ""),
    ({"action": "local_echo"}, rtu(WRITE_10) * 2, True, ""),  # 06 echoes its request
    ({"action": "close"}, b"", False, "cannot close"),
    ({"action": "reset", "phase": "after"}, b"", True, "cannot close"),
]


@pytest.mark.slow  # a socat pty
@pytest.mark.parametrize(("rule", "seen", "written", "note"), RTU_CASES, ids=lambda v: str(v))
async def test_a_rule_armed_over_http_acts_on_rtu_over_a_pty(
    socat_pair: SocatPair, rule: dict[str, Any], seen: bytes, written: bool, note: str
) -> None:
    with trio.fail_after(TIMEOUT):
        async with simulator(comm="serial", framer="rtu", port=socat_pair.server) as sim:
            rule_id = await arm(sim, rule)
            async with raw.open_serial(socat_pair.client, framer="rtu") as client:
                await client.send_bytes(rtu(WRITE_10))
                data = b""
                while chunk := await client.receive_bytes(timeout=QUIET):
                    data += chunk
    assert data == seen
    assert (sim.data.get(10, "uint16") == 77) == written
    [record] = sim.device.recorder
    assert record.rule_id == rule_id
    assert note in " ".join(record.faults)


@pytest.mark.slow  # a socat pty
async def test_rules_armed_over_http_act_on_rtu_over_a_pty(socat_pair: SocatPair) -> None:
    with trio.fail_after(TIMEOUT):
        async with simulator(comm="serial", framer="rtu", port=socat_pair.server) as sim:
            async with raw.open_serial(socat_pair.client, framer="rtu") as client:
                await arm(sim, {"action": "exception", "code": 2, "function": 3})
                reply = await client.request(READ_10)
                assert reply.exception_code == 2
                await arm(sim, {"action": "corrupt_checksum"})
                with pytest.raises(raw.BadFrame):
                    await client.request(READ_10)
                await arm(sim, {"action": "no_reply", "phase": "after"})
                await client.send_bytes(raw.rtu(WRITE_10))
                assert await client.receive_frame(timeout=QUIET) is None
                assert sim.data.get(10, "uint16") == 77
                assert (await client.request(READ_10)).registers() == [77]
            rule_ids = [r.rule_id for r in sim.device.recorder]
            assert rule_ids == [1, 2, 3, None]
