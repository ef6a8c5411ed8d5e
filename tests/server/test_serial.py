"""Modbus RTU on a serial line: a socat pty pair (real time) and a fake port (virtual time)."""

from __future__ import annotations

import os
import struct
from typing import Any

import pytest
import trio
import trio.testing
import trio_serial

from trio_modbus.server import SerialServer, Session, serve_serial
from trio_modbus.server._serial import LOCAL_ECHO_WINDOW

from .._pty import SocatPair
from ._mb import (
    PtyEnd,
    diagnostic,
    holding_values,
    make_context,
    open_fds,
    package_tasks,
    read_holding,
    registers_reply,
    rtu,
    wait_until,
    write_register,
)

QUIET = 0.1  # seconds of real time a "no reply" check listens to the line

# A stale fragment: the first six bytes of "unit 1, write register 5 = 0x235E". Its CRC would be
# 01 03, the first two bytes of the request that follows: only the silence between them tells
# that the fragment ended (without it, the fragment and those two bytes form a valid frame).
STALE = bytes.fromhex("01 06 0005 235E")
READ_0 = rtu(1, read_holding(0, 1))
assert READ_0[:2] == rtu(1, write_register(5, 0x235E))[6:]


def serial_server(context: Any, port: str, **options: Any) -> SerialServer:
    return serve_serial(context, port=port, baudrate=115200, reopen_delay=0.05, **options)


# -- a real pty pair ---------------------------------------------------------------------------


async def test_serial_answers_its_units_and_ignores_the_others(socat_pair: SocatPair) -> None:
    context = make_context(1)
    context[1].setValues(3, 0, [0x1111])
    server_tty = os.path.realpath(socat_pair.server)
    with trio.fail_after(10):
        async with serial_server(context, socat_pair.server) as server:
            assert server.running
            await server.port_open.wait()
            assert any(fd.endswith(server_tty) for fd in open_fds())
            client = PtyEnd(socat_pair.client)
            try:
                await client.write(rtu(7, read_holding(0, 1)))  # another station's request
                await trio.sleep(0.01)
                await client.write(READ_0)
                # The first bytes on the line are the answer to unit 1: nothing for unit 7.
                assert await client.read(7) == rtu(1, registers_reply([0x1111]))
                assert await client.read_nothing_for(QUIET) == b""
                # Every frame on the line counts: 7's, 1's and this one.
                await client.write(rtu(1, diagnostic(0x0B)))
                assert await client.read(8) == rtu(1, struct.pack(">BHH", 8, 0x0B, 3))
            finally:
                client.close()
            stats = server.statistics
            assert (stats.requests, stats.responses) == (3, 2)
        # Leaving the block closed the port.
        assert not any(fd.endswith(server_tty) for fd in open_fds())
        assert package_tasks() == []


@pytest.mark.parametrize("broadcast", [True, False])
async def test_serial_broadcast_is_executed_on_every_unit_and_never_answered(
    socat_pair: SocatPair, broadcast: bool
) -> None:
    context = make_context(1, 2)
    with trio.fail_after(10):
        async with serial_server(context, socat_pair.server, broadcast=broadcast) as server:
            await server.port_open.wait()
            client = PtyEnd(socat_pair.client)
            try:
                await client.write(rtu(0, write_register(3, 0x1234)))
                await trio.sleep(0.01)
                await client.write(rtu(0, read_holding(3, 1)))  # reads are never broadcast
                await trio.sleep(0.01)
                await client.write(rtu(2, read_holding(3, 1)))
                expected = 0x1234 if broadcast else 0
                # The first bytes on the line answer unit 2: the broadcasts got no reply.
                assert await client.read(7) == rtu(2, registers_reply([expected]))
                assert await client.read_nothing_for(QUIET) == b""
            finally:
                client.close()
            assert holding_values(context, 1, 3, 1) == [expected]
            assert holding_values(context, 2, 3, 1) == [expected]


async def test_serial_port_removed_and_restored_is_served_again(socat_pair: SocatPair) -> None:
    events: list[bool] = []
    context = make_context(1)
    context[1].setValues(3, 0, [42])
    with trio.fail_after(20):
        async with serial_server(
            context, socat_pair.server, trace_connect=events.append
        ) as server:
            await server.port_open.wait()
            client = PtyEnd(socat_pair.client)
            try:
                await client.write(READ_0)
                assert await client.read(7) == rtu(1, registers_reply([42]))
            finally:
                client.close()
            socat_pair.stop()  # the adapter is unplugged
            await wait_until(lambda: events == [True, False])
            assert not server.port_open.is_set()
            await trio.sleep(0.2)  # a few failed attempts to reopen
            assert server.running
            assert server.statistics.serial_reopens == 0
            socat_pair.start()  # plugged in again (same link names, new ptys)
            await wait_until(lambda: server.statistics.serial_reopens == 1)
            await server.port_open.wait()
            client = PtyEnd(socat_pair.client)
            try:
                await client.write(rtu(1, write_register(0, 43)))
                assert await client.read(8) == rtu(1, write_register(0, 43))
                await client.write(READ_0)
                assert await client.read(7) == rtu(1, registers_reply([43]))
            finally:
                client.close()
            assert events == [True, False, True]


async def test_serial_local_echo_of_the_reply_is_not_taken_for_a_request(
    socat_pair: SocatPair,
) -> None:
    context = make_context(1)
    with trio.fail_after(10):
        async with serial_server(context, socat_pair.server, handle_local_echo=True) as server:
            await server.port_open.wait()
            client = PtyEnd(socat_pair.client)
            try:
                request = rtu(1, write_register(4, 9))
                await client.write(request)
                reply = await client.read(8)
                assert reply == request  # FC 06 answers with an echo of the request
                # A two-wire adapter hears the server's own reply: it must not run it again.
                await client.write(reply)
                await trio.sleep(0.01)
                await client.write(rtu(1, read_holding(4, 1)))
                assert await client.read(7) == rtu(1, registers_reply([9]))
                assert await client.read_nothing_for(QUIET) == b""
            finally:
                client.close()
            assert server.statistics.requests == 2


# -- a fake port, in virtual time ----------------------------------------------------------------


class FakeLine:
    """Replaces ``trio_serial.SerialStream``: a port the test plugs in and pulls out."""

    def __init__(self) -> None:
        self.present = True
        self.opens = 0
        self.client: trio.abc.Stream | None = None
        self.buffer = b""

    def __call__(self, port: str, **settings: Any) -> _FakePort:
        return _FakePort(self)

    async def write(self, data: bytes) -> None:
        assert self.client is not None
        await self.client.send_all(data)

    async def read(self, n: int) -> bytes:
        assert self.client is not None
        while len(self.buffer) < n:
            data = await self.client.receive_some(4096)
            if not data:
                raise EOFError
            self.buffer += data
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    async def unplug(self) -> None:
        self.present = False
        assert self.client is not None
        await self.client.aclose()
        self.client, self.buffer = None, b""


class _FakePort(trio.abc.Stream):
    def __init__(self, line: FakeLine) -> None:
        self.line = line
        self.inner: trio.abc.Stream | None = None

    async def aopen(self) -> None:
        await trio.lowlevel.checkpoint()
        if not self.line.present:
            raise FileNotFoundError(2, "No such file or directory")
        client, self.inner = trio.testing.memory_stream_pair()
        self.line.client = client
        self.line.opens += 1

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        assert self.inner is not None
        return await self.inner.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        assert self.inner is not None
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        if self.inner is not None:
            await self.inner.aclose()


@pytest.fixture
def fake_line(monkeypatch: pytest.MonkeyPatch) -> FakeLine:
    line = FakeLine()
    monkeypatch.setattr(trio_serial, "SerialStream", line)
    return line


@pytest.mark.parametrize("gap", [True, False], ids=["silence", "no-silence"])
async def test_serial_silence_ends_a_stale_fragment(
    fake_line: FakeLine, autojump_clock: object, gap: bool
) -> None:
    context = make_context(1)
    context[1].setValues(3, 0, [0x0A0A])
    with trio.fail_after(60):
        async with serial_server(context, "fake") as server:
            await server.port_open.wait()
            await fake_line.write(STALE)
            if gap:
                await trio.sleep(1)  # far more than t3.5
            await fake_line.write(READ_0)
            if gap:  # the fragment was dropped; the request after the silence is answered
                assert await fake_line.read(7) == rtu(1, registers_reply([0x0A0A]))
                assert holding_values(context, 1, 5, 1) == [0]
                # One communication error: the dropped fragment.
                await fake_line.write(rtu(1, diagnostic(0x0C)))
                assert await fake_line.read(8) == rtu(1, struct.pack(">BHH", 8, 0x0C, 1))
            else:  # without the silence, the bytes really do make a write request
                assert await fake_line.read(8) == rtu(1, write_register(5, 0x235E))
                assert holding_values(context, 1, 5, 1) == [0x235E]


async def test_serial_port_missing_at_start_then_lost_is_opened_and_reopened(
    fake_line: FakeLine, autojump_clock: object
) -> None:
    events: list[bool] = []
    fake_line.present = False
    with trio.fail_after(600):
        async with serve_serial(
            make_context(1), port="fake", reopen_delay=1, trace_connect=events.append
        ) as server:
            await trio.sleep(30)  # no port yet: the server waits for it
            assert server.running
            assert fake_line.opens == 0
            fake_line.present = True
            await server.port_open.wait()
            assert server.statistics.serial_reopens == 0  # a first open, not a reopen
            await fake_line.write(READ_0)
            assert await fake_line.read(7) == rtu(1, registers_reply([0]))
            await fake_line.unplug()
            await trio.sleep(30)
            assert events == [True, False]
            assert server.statistics.serial_reopens == 0
            fake_line.present = True
            start = trio.current_time()
            await wait_until(lambda: fake_line.opens == 2, timeout=60)
            assert trio.current_time() - start <= 1.01  # retried every reopen_delay
            await server.port_open.wait()
            assert server.statistics.serial_reopens == 1
            await fake_line.write(READ_0)
            assert await fake_line.read(7) == rtu(1, registers_reply([0]))
            assert events == [True, False, True]
        # Leaving the block closes the port.
        assert await fake_line.client.receive_some(10) == b""  # type: ignore[union-attr]
        assert events == [True, False, True, False]


@pytest.mark.parametrize(("delay", "echoed"), [(0.015, True), (0.05, False)])
async def test_a_late_echo_within_the_window_is_dropped_after_it_is_a_request(
    fake_line: FakeLine, autojump_clock: object, delay: float, echoed: bool
) -> None:
    # A USB adapter may hand over the echo of our reply only after its latency timer (16 ms
    # by default): within LOCAL_ECHO_WINDOW it is still the echo; after it, the same bytes
    # are a new request (FC 06 is answered with the request itself).
    assert LOCAL_ECHO_WINDOW == 0.02
    context = make_context(1)
    with trio.fail_after(60):
        async with serial_server(context, "fake", handle_local_echo=True) as server:
            await server.port_open.wait()
            request = rtu(1, write_register(4, 9))
            await fake_line.write(request)
            assert await fake_line.read(8) == request
            await trio.sleep(delay)
            await fake_line.write(request)  # the echo, or the same request again
            await fake_line.write(rtu(1, read_holding(4, 1)))
            if not echoed:
                assert await fake_line.read(8) == request
            assert await fake_line.read(7) == rtu(1, registers_reply([9]))
            await trio.testing.wait_all_tasks_blocked()
            assert server.statistics.requests == (2 if echoed else 3)


async def test_a_stream_wrapper_sees_and_may_alter_the_bytes_of_a_serial_port(
    fake_line: FakeLine, autojump_clock: object
) -> None:
    seen: list[tuple[str, object, bytes]] = []

    class Tap(trio.abc.Stream):
        def __init__(self, inner: trio.abc.Stream, session: Session) -> None:
            self.inner, self.session = inner, session

        async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
            data = await self.inner.receive_some(max_bytes)
            seen.append(("in", self.session.peer, bytes(data)))
            return data

        async def send_all(self, data: bytes | bytearray | memoryview) -> None:
            seen.append(("out", self.session.peer, bytes(data)))
            await self.inner.send_all(b"\xff" + bytes(data))  # noise before each reply

        async def wait_send_all_might_not_block(self) -> None:
            await self.inner.wait_send_all_might_not_block()

        async def aclose(self) -> None:
            await self.inner.aclose()

    reply = rtu(1, registers_reply([0]))
    with trio.fail_after(60):
        async with serial_server(make_context(1), "fake", stream_wrapper=Tap) as server:
            await server.port_open.wait()
            await fake_line.write(READ_0)
            assert await fake_line.read(1 + len(reply)) == b"\xff" + reply
    assert seen == [("in", "fake", READ_0), ("out", "fake", reply)]
