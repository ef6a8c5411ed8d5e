"""shutdown(grace): what it waits for, and that a cancelled caller still stops the server."""

from __future__ import annotations

import trio
import trio.testing

from trio_modbus.server import serve_tcp, serve_udp

from ._mb import (
    GatedService,
    MbapClient,
    adu,
    connect,
    make_context,
    read_holding,
    registers_reply,
    wait_until,
)


async def test_a_cancelled_shutdown_still_stops_the_server(autojump_clock: object) -> None:
    # The caller gives up on the grace period: the server must not stay half-stopped (not
    # accepting, yet running with the busy connection) but close at once.
    service = GatedService(make_context(1, 2), gated_units=[2])
    server = serve_tcp(service=service)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MbapClient(client_stream)
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            nursery.start_soon(server.handle_stream, server_stream)
            await client.send(adu(1, 2, read_holding(0, 1)))  # waits for the gate: busy
            await wait_until(lambda: service.waiting == 1)
            with trio.move_on_after(1) as scope:
                await server.shutdown(grace=30)
            assert scope.cancelled_caught
            await wait_until(lambda: not server.running)
            assert await client.expect_closed() == b""  # the busy connection is closed too
            assert trio.current_time() < 2  # long before the grace would have run out
    assert server.statistics.connections_active == 0


async def test_shutdown_returns_when_the_last_request_is_answered_not_later(
    autojump_clock: object,
) -> None:
    # The wait ends on the event of the last connection leaving, at that very moment.
    service = GatedService(make_context(1, 2), gated_units=[2])
    with trio.fail_after(100):
        async with serve_tcp(service=service, port=0, idle_timeout=None) as server:
            client = await connect(server.address[1])
            await client.send(adu(1, 2, read_holding(0, 1)))
            await wait_until(lambda: service.waiting == 1)

            async def open_the_gate() -> None:
                await trio.sleep(3)
                service.gate.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(open_the_gate)
                start = trio.current_time()
                await server.shutdown(grace=30)
                elapsed = trio.current_time() - start
            assert await client.read_frame() == (1, 2, registers_reply([0]))
            # 3 s of work, then the client's silence ends the half-closed linger (0.1 s).
            assert 3 <= elapsed <= 3.1 + 1e-6
            await client.aclose()


async def test_a_udp_shutdown_waits_for_the_datagram_in_progress() -> None:
    service = GatedService(make_context(1, 2), gated_units=[2])
    with trio.fail_after(10):
        async with serve_udp(service=service, port=0) as server:
            sock = trio.socket.socket(type=trio.socket.SOCK_DGRAM)
            await sock.connect(server.address)
            await sock.send(adu(5, 2, read_holding(0, 1)))
            await wait_until(lambda: service.waiting == 1)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.shutdown, 30)
                await trio.sleep(0)  # it waits: the datagram is in progress
                assert server.running
                service.gate.set()
            assert await sock.recv(300) == adu(5, 2, registers_reply([0]))
            assert not server.running
            sock.close()
