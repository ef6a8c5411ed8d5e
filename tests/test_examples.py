"""Every example in examples/ runs: started on a free port (or a pty), queried, stopped."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import ssl
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import trio

from trio_modbus.framing import crc16_bytes

from ._pty import SocatPair
from ._tls import TlsFiles

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
READ_HR_0_3 = struct.pack(">HHHBBHH", 7, 0, 6, 1, 3, 0, 3)  # tid 7, unit 1, FC 03, addr 0, qty 3
REPLY_0_1_2 = struct.pack(">HHHBBB3H", 7, 0, 9, 1, 3, 6, 0, 1, 2)


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_has_a_test() -> None:
    tested = {
        "tcp_server",
        "udp_server",
        "tls_server",
        "serial_server",
        "layered_server",
        "computed_service",
        "asyncio_host",
        "graceful_shutdown",
        "pytest_fixture",
        "read_client",
        "test_poller",
        "test_sync_client",
        "test_plugin_fixtures",
        "simulator",
        "make_certificates",
        "mbaps_server",
    }
    assert {p.stem for p in EXAMPLES.glob("*.py")} <= tested


async def test_read_client_example_reads_the_tcp_example(nursery: trio.Nursery) -> None:
    server = await nursery.start(load("tcp_server").run, 0)
    registers = await trio.to_thread.run_sync(load("read_client").read, server.address[1])
    assert registers == [0, 1, 2]


async def test_tcp_example(nursery: trio.Nursery) -> None:
    server = await nursery.start(load("tcp_server").run, 0)
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", server.address[1])
        await stream.send_all(READ_HR_0_3)
        assert await stream.receive_some(100) == REPLY_0_1_2
        await stream.aclose()


async def test_udp_example(nursery: trio.Nursery) -> None:
    server = await nursery.start(load("udp_server").run, 0)
    with trio.fail_after(10):
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        await sock.sendto(READ_HR_0_3, ("127.0.0.1", server.address[1]))
        assert await sock.recv(100) == REPLY_0_1_2
        sock.close()


async def test_tls_example(nursery: trio.Nursery, tls_files: TlsFiles) -> None:
    f = tls_files
    server = await nursery.start(load("tls_server").run, f.server_cert, f.server_key, f.ca, 0)
    client_ctx = ssl.create_default_context(cafile=f.ca)
    client_ctx.load_cert_chain(f.client_cert, f.client_key)
    with trio.fail_after(10):
        tcp = await trio.open_tcp_stream("127.0.0.1", server.address[1])
        stream = trio.SSLStream(tcp, client_ctx, server_hostname="127.0.0.1")
        await stream.send_all(READ_HR_0_3)
        assert await stream.receive_some(100) == REPLY_0_1_2
        await stream.aclose()


async def test_mbaps_example_with_its_certificates_and_policy(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    load("make_certificates").make_pki(tmp_path)
    server = await nursery.start(
        load("mbaps_server").run,
        str(tmp_path / "server.pem"),
        str(tmp_path / "server.key"),
        str(tmp_path / "ca.pem"),
        str(EXAMPLES / "roles.toml"),
        0,
    )

    async def ask(role: str, pdu: bytes) -> bytes:
        ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        ctx.load_cert_chain(tmp_path / f"{role}.pem", tmp_path / f"{role}.key")
        tcp = await trio.open_tcp_stream("127.0.0.1", server.address[1])
        stream = trio.SSLStream(tcp, ctx, server_hostname="127.0.0.1")
        try:
            await stream.send_all(struct.pack(">HHHB", 9, 0, len(pdu) + 1, 1) + pdu)
            return (await stream.receive_some(300))[7:]
        finally:
            await trio.aclose_forcefully(stream)

    with trio.fail_after(10):
        read_0_3 = bytes.fromhex("0300000003")
        write_setpoint = bytes.fromhex("06000A0007")
        assert await ask("operator", read_0_3) == bytes.fromhex("0306000000010002")
        assert await ask("operator", write_setpoint) == write_setpoint
        assert await ask("viewer", read_0_3) == bytes.fromhex("0306000000010002")
        assert await ask("viewer", write_setpoint) == bytes.fromhex("8601")
        assert await ask("norole", read_0_3) == bytes.fromhex("8301")


async def test_serial_example(nursery: trio.Nursery, socat_pair: SocatPair) -> None:
    server = await nursery.start(load("serial_server").run, socat_pair.server, 115200)
    request = bytes.fromhex("010300000003")
    fd = os.open(socat_pair.client, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        with trio.fail_after(10):
            await server.port_open.wait()
            os.write(fd, request + crc16_bytes(request))
            reply = b""
            while len(reply) < 11:
                await trio.lowlevel.wait_readable(fd)
                reply += os.read(fd, 100)
        body = bytes.fromhex("0103060000000100 02".replace(" ", ""))
        assert reply == body + crc16_bytes(body)
    finally:
        os.close(fd)


async def test_layered_example(nursery: trio.Nursery, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="layered_server")
    server, recorder = await nursery.start(load("layered_server").run, 0)
    write = struct.pack(">HHHBBHH", 8, 0, 6, 1, 6, 0, 7)  # tid 8, unit 1: write register 0
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", server.address[1])
        await stream.send_all(READ_HR_0_3)
        assert await stream.receive_some(100) == REPLY_0_1_2
        await stream.send_all(write)
        assert await stream.receive_some(100) == struct.pack(">HHHBBB", 8, 0, 3, 1, 0x86, 1)
        await stream.aclose()
        while "left" not in caplog.text:
            await trio.sleep(0.01)
    assert [type(x.error).__name__ for x in recorder.records] == ["NoneType", "ServiceError"]
    assert "connected" in caplog.text


async def test_computed_service_example(nursery: trio.Nursery, autojump_clock: object) -> None:
    server = await nursery.start(load("computed_service").run, 0)
    uptime = struct.pack(">HHHBBHH", 9, 0, 6, 1, 3, 0, 2)  # tid 9: registers 0..1
    await trio.sleep(70_000)  # virtual time: the uptime passes 65535 s, into the high word
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", server.address[1])
        await stream.send_all(uptime)
        reply = await stream.receive_some(100)
        await stream.send_all(READ_HR_0_3)  # three registers: the datastore answers
        assert await stream.receive_some(100) == struct.pack(
            ">HHHBBB3H", 7, 0, 9, 1, 3, 6, 0, 0, 0
        )
        await stream.aclose()
    header, seconds = reply[:9], struct.unpack(">I", reply[9:])[0]
    assert header == struct.pack(">HHHBBB", 9, 0, 7, 1, 3, 4)
    assert 70_000 <= seconds < 70_010


def test_asyncio_host_example() -> None:
    from trio_modbus.server import running_servers

    main = load("asyncio_host").main

    async def drive() -> None:
        task = asyncio.create_task(main(0))
        while not running_servers():
            await asyncio.sleep(0.01)
        port = running_servers()[0].address[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(READ_HR_0_3)
        await writer.drain()
        assert await reader.readexactly(len(REPLY_0_1_2)) == REPLY_0_1_2
        writer.close()
        await writer.wait_closed()
        task.cancel()  # stops the server: its sockets are closed before the task ends
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert not running_servers()

    asyncio.run(asyncio.wait_for(drive(), 10))


async def test_graceful_shutdown_example(nursery: trio.Nursery) -> None:
    server = await nursery.start(load("graceful_shutdown").run, 0)
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", server.address[1])
        await stream.send_all(READ_HR_0_3)
        assert await stream.receive_some(100) == REPLY_0_1_2
        os.kill(os.getpid(), signal.SIGTERM)  # the example's signal receiver takes it
        assert await stream.receive_some(100) == b""  # the idle connection is closed
        await stream.aclose()
        while server.running:
            await trio.sleep(0.01)


@pytest.mark.slow  # pytest in a process of its own
@pytest.mark.parametrize(
    ("example", "passed"),
    [
        ("pytest_fixture", 1),
        ("test_poller", 2),
        ("test_sync_client", 1),
        ("test_plugin_fixtures", 3),
    ],
)
def test_pytest_examples(example: str, passed: int) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(EXAMPLES / f"{example}.py"),
        ],
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{passed} passed" in result.stdout


def test_simulator_example_serves_modbus_and_http_under_asyncio() -> None:
    from pymodbus.client import AsyncModbusTcpClient

    async def main() -> None:
        example = load("simulator")
        simulator = example.make_simulator(None, http_port=0, modbus_port=0)
        task = asyncio.create_task(example.run_simulator(simulator))
        while simulator.http_address is None:
            await asyncio.sleep(0.01)
        client = AsyncModbusTcpClient("127.0.0.1", port=simulator.modbus_address[1])
        await client.connect()
        reply = await client.read_holding_registers(70, count=2, device_id=1)
        client.close()
        assert bytes.fromhex(f"{reply.registers[0]:04x}{reply.registers[1]:04x}") == b"trio"
        host, port = simulator.http_address
        status = await asyncio.to_thread(_get_json, f"http://{host}:{port}/api/v1/status")
        assert status["statistics"]["requests"] == 1
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert not simulator.running

    asyncio.run(asyncio.wait_for(main(), 30))


def _get_json(url: str) -> object:
    import json
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.load(reply)
