"""Modbus/UDP on 127.0.0.1: a task per datagram, a cap on datagrams in progress."""

from __future__ import annotations

import socket

import pytest
import trio
import trio.testing

from trio_modbus.server import serve_udp

from ._mb import GatedService, adu, make_context, read_holding, registers_reply, wait_until


async def udp_client(port: int) -> trio.socket.SocketType:
    sock = trio.socket.socket(type=socket.SOCK_DGRAM)
    await sock.connect(("127.0.0.1", port))
    return sock


async def test_udp_answers_each_datagram_and_drops_what_is_not_modbus() -> None:
    context = make_context(1)
    context[1].setValues(3, 0, [5, 6])
    with trio.fail_after(10):
        async with serve_udp(context, port=0) as server:
            with await udp_client(server.address[1]) as sock:
                await sock.send(adu(1, 1, read_holding(0, 2)))
                assert await sock.recv(1024) == adu(1, 1, registers_reply([5, 6]))
                await sock.send(adu(2, 1, read_holding(0, 1), protocol=5))  # not Modbus
                await sock.send(adu(3, 9, read_holding(0, 1)))  # a unit it does not hold
                assert await sock.recv(1024) == adu(3, 9, b"\x83\x0b")
            await trio.testing.wait_all_tasks_blocked()  # a reply counts once it is sent
            stats = server.statistics
            assert stats.protocol_errors == 1
            assert (stats.requests, stats.responses) == (2, 2)


async def test_a_udp_flood_beyond_max_datagrams_is_dropped_and_counted() -> None:
    service = GatedService(make_context(1, 2), gated_units=[2])
    with trio.fail_after(10):
        async with serve_udp(service=service, port=0, max_datagrams=4) as server:
            with await udp_client(server.address[1]) as sock:
                for tid in range(10):
                    await sock.send(adu(tid, 2, read_holding(0, 1)))
                # Four are being answered (held by the service); the other six are dropped.
                await wait_until(
                    lambda: service.waiting == 4 and server.statistics.datagrams_dropped == 6
                )
                service.gate.set()
                replies = {await sock.recv(1024) for _ in range(4)}
                assert replies == {adu(tid, 2, registers_reply([0])) for tid in range(4)}
                # Dropping was for the flood only: the next datagram is answered, and no
                # reply of a dropped one comes before it.
                await sock.send(adu(100, 1, read_holding(0, 1)))
                assert await sock.recv(1024) == adu(100, 1, registers_reply([0]))
            await trio.testing.wait_all_tasks_blocked()  # a reply counts once it is sent
            stats = server.statistics
            assert stats.datagrams_dropped == 6
            assert (stats.requests, stats.responses) == (5, 5)


async def test_udp_trace_packet_can_replace_datagrams() -> None:
    context = make_context(1)
    context[1].setValues(3, 7, [77])
    seen: list[tuple[bool, bytes]] = []

    def trace_packet(sending: bool, data: bytes) -> bytes:
        seen.append((sending, data))
        return data.replace(read_holding(0, 1), read_holding(7, 1)) if not sending else data

    with trio.fail_after(10):
        async with serve_udp(context, port=0, trace_packet=trace_packet) as server:
            with await udp_client(server.address[1]) as sock:
                await sock.send(adu(1, 1, read_holding(0, 1)))
                assert await sock.recv(1024) == adu(1, 1, registers_reply([77]))
    assert seen == [
        (False, adu(1, 1, read_holding(0, 1))),
        (True, adu(1, 1, registers_reply([77]))),
    ]


async def test_udp_shutdown_answers_datagrams_in_progress_then_closes() -> None:
    service = GatedService(make_context(1, 2), gated_units=[2])
    with trio.fail_after(10):
        async with serve_udp(service=service, port=0) as server:
            port = server.address[1]
            with await udp_client(port) as sock:
                await sock.send(adu(7, 2, read_holding(0, 1)))
                await wait_until(lambda: service.waiting == 1)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(server.shutdown, 30)
                    # Shutdown runs until it waits for the datagram in progress: the server's
                    # receive loop has ended by then.
                    await trio.testing.wait_all_tasks_blocked()
                    assert server.running  # waiting for the datagram in progress
                    await sock.send(adu(8, 1, read_holding(0, 1)))  # too late: not taken
                    # On loopback the datagram is queued at the server's socket once send()
                    # returns: a server still receiving would take it (and answer it, unit 1
                    # is not gated) before every task is blocked again, and so before the
                    # reply to 7, which the gate holds until then.
                    await trio.testing.wait_all_tasks_blocked()
                    service.gate.set()
                    assert await sock.recv(1024) == adu(7, 2, registers_reply([0]))
                assert not server.running
                with trio.move_on_after(0.1):
                    pytest.fail(f"answered after shutdown began: {await sock.recv(1024)!r}")
            assert server.statistics.requests == 1
        with socket.socket(type=socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", port))  # the port is free again
