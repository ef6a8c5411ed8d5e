"""Lifecycle of a server: async with / nursery.start, errors, hard stop and graceful shutdown."""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from trio_modbus.server import ServerStatistics, TcpServer, UdpServer, serve_tcp, serve_udp

from ._mb import (
    GatedService,
    MbapClient,
    adu,
    connect,
    make_context,
    open_fds,
    package_tasks,
    read_holding,
    registers_reply,
    wait_until,
)


async def assert_port_closed(port: int) -> None:
    """Nobody listens on ``port`` any more, and it can be bound (and listened on) again."""
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", port)
    sock = socket.socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))  # EADDRINUSE while a listener is left open
        sock.listen()
    finally:
        sock.close()


# -- the two ways to run a server --------------------------------------------------------------


async def test_async_with_yields_a_running_tcp_server_on_the_real_port() -> None:
    with trio.fail_after(10):
        async with serve_tcp(make_context(), port=0) as server:
            assert isinstance(server, TcpServer)
            assert server.running
            host, port = server.address
            assert host == "127.0.0.1"
            assert port != 0
            client = await connect(port)
            assert await client.request(7, 1, read_holding(0, 2)) == registers_reply([0, 0])
            stats = server.statistics
            assert isinstance(stats, ServerStatistics)
            assert stats.connections_accepted == stats.connections_active == 1
            assert stats.requests == stats.responses == 1
            await client.aclose()
        assert not server.running
        await assert_port_closed(port)


async def test_async_with_yields_a_running_udp_server_on_the_real_port() -> None:
    with trio.fail_after(10):
        async with serve_udp(make_context(), port=0) as server:
            assert isinstance(server, UdpServer)
            assert server.running
            port = server.address[1]
            assert port != 0
            with trio.socket.socket(type=socket.SOCK_DGRAM) as sock:
                await sock.sendto(adu(3, 1, read_holding(0, 1)), ("127.0.0.1", port))
                data = await sock.recv(1024)
            assert data == adu(3, 1, registers_reply([0]))
        assert not server.running
        # The UDP port is free again.
        with socket.socket(type=socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", port))


async def test_nursery_start_reports_the_server_once_bound() -> None:
    server = serve_tcp(make_context(), port=0)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            started = await nursery.start(server.serve)
            assert started is server
            assert server.running
            port = server.address[1]
            assert port != 0
            client = await connect(port)
            assert await client.request(1, 1, read_holding(5, 1)) == registers_reply([0])
            nursery.cancel_scope.cancel()
        assert not server.running
        assert await client.expect_closed() == b""
        await client.aclose()
        await assert_port_closed(port)


async def test_a_server_object_runs_once() -> None:
    server = serve_tcp(make_context(), port=0)
    with trio.fail_after(10):
        async with server:
            port = server.address[1]
            with pytest.raises(RuntimeError):
                async with server:
                    pytest.fail("started twice")
            assert server.running
            client = await connect(port)
            assert await client.request(1, 1, read_holding(0, 1)) == registers_reply([0])
            await client.aclose()
        assert not server.running
        await assert_port_closed(port)


# -- errors ---------------------------------------------------------------------------------


async def test_a_port_in_use_raises_oserror_from_async_with_and_from_start() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with trio.fail_after(10):
            with pytest.raises(OSError) as info:
                async with serve_tcp(make_context(), port=port):
                    pytest.fail("bound a port that is in use")
            assert info.value.errno == errno.EADDRINUSE
            async with trio.open_nursery() as nursery:
                with pytest.raises(OSError) as info:
                    await nursery.start(serve_tcp(make_context(), port=port).serve)
                assert info.value.errno == errno.EADDRINUSE
    finally:
        taken.close()


async def test_udp_port_in_use_raises_oserror_from_async_with() -> None:
    with socket.socket(type=socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        with pytest.raises(OSError) as info:
            async with serve_udp(make_context(), port=taken.getsockname()[1]):
                pytest.fail("bound a port that is in use")
        assert info.value.errno == errno.EADDRINUSE


@pytest.mark.parametrize("chaining", ["explicit", "implicit", "none"])
async def test_an_exception_of_the_body_propagates_unchanged(chaining: str) -> None:
    error = LookupError("raised in the body")
    cause = KeyError("the cause")
    with trio.fail_after(10), pytest.raises(LookupError) as info:
        async with serve_tcp(make_context(), port=0) as server:
            client = await connect(server.address[1])  # with a live connection
            assert await client.request(1, 1, read_holding(0, 1)) == registers_reply([0])
            if chaining == "none":
                raise error
            try:
                raise cause
            except KeyError as exc:
                if chaining == "explicit":
                    raise error from exc
                raise error  # noqa: B904 - implicit chaining is what is tested
    assert info.value is error
    assert not isinstance(info.value, BaseExceptionGroup)
    if chaining == "none":
        assert error.__cause__ is None
        assert error.__context__ is None
    else:
        assert error.__cause__ is (cause if chaining == "explicit" else None)
        assert error.__context__ is cause
        assert error.__suppress_context__ is (chaining == "explicit")
    assert not server.running
    assert await client.expect_closed() == b""
    await client.aclose()


# -- hard stop ------------------------------------------------------------------------------


async def run_and_stop(how: str, server: TcpServer, body: Callable[[], Awaitable[None]]) -> None:
    """Run ``server``, run ``body``, then stop the server the way ``how`` says."""
    if how == "nursery":
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            await body()
            nursery.cancel_scope.cancel()
        return
    with trio.CancelScope() as scope:
        async with server:
            await body()
            if how == "cancel":
                scope.cancel()
                await trio.sleep_forever()
            if how == "close":
                server.close()
                server.close()  # idempotent
                await wait_until(lambda: not server.running)
                # The block goes on; the server has stopped.
    assert scope.cancelled_caught == (how == "cancel")


@pytest.mark.parametrize("how", ["leave", "cancel", "close", "nursery"])
async def test_a_hard_stop_leaves_no_task_socket_or_port_open(how: str) -> None:
    context = make_context(1, 2)
    service = GatedService(context, gated_units=[2])
    server = serve_tcp(service=service, port=0)
    assert package_tasks() == []
    fds_before = open_fds()
    clients: list[MbapClient] = []

    async def body() -> None:
        port = server.address[1]
        idle = await connect(port)
        assert await idle.request(1, 1, read_holding(0, 1)) == registers_reply([0])
        busy = await connect(port)
        await busy.send(adu(2, 2, read_holding(0, 1)))  # held by the service: in flight
        clients.extend((idle, busy))
        await wait_until(lambda: service.waiting == 1)
        assert len(package_tasks()) >= 3  # serve, accept loop, connections: the check can fail
        assert len(open_fds()) >= len(fds_before) + 5

    with trio.fail_after(10):
        await run_and_stop(how, server, body)
        assert not server.running
        assert package_tasks() == []
        assert service.waiting == 0  # the held request was cancelled, not left behind
        for client in clients:
            assert await client.expect_closed() == b""  # no answer, just the end
            await client.aclose()
        assert open_fds() == fds_before
        await assert_port_closed(server.address[1])


async def test_leaving_the_block_closes_streams_given_to_handle_stream(
    autojump_clock: object,
) -> None:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MbapClient(client_stream)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            async with serve_tcp(make_context(), port=0) as server:
                nursery.start_soon(server.handle_stream, server_stream)
                assert await client.request(4, 1, read_holding(0, 1)) == registers_reply([0])
                assert server.statistics.connections_active == 1
            assert await client.expect_closed() == b""
        assert server.statistics.connections_active == 0
        assert package_tasks() == []


# -- graceful shutdown ----------------------------------------------------------------------


async def test_shutdown_closes_idle_clients_and_the_listener_then_answers_in_flight() -> None:
    context = make_context(1, 2)
    context[2].setValues(3, 0, [11, 22, 33])
    service = GatedService(context, gated_units=[2])
    fds_before = open_fds()
    with trio.fail_after(10):
        async with serve_tcp(service=service, port=0) as server:
            port = server.address[1]
            idle = await connect(port)
            assert await idle.request(1, 1, read_holding(0, 1)) == registers_reply([0])
            busy = await connect(port)
            await busy.send(adu(0xBEEF, 2, read_holding(0, 3)))
            await wait_until(lambda: service.waiting == 1)
            finished = trio.Event()

            async def shut_down() -> None:
                await server.shutdown(grace=30)
                finished.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(shut_down)
                assert await idle.expect_closed() == b""  # idle: closed at once
                with pytest.raises(OSError):  # no longer accepting
                    await trio.open_tcp_stream("127.0.0.1", port)
                assert server.running
                assert not finished.is_set()
                service.gate.set()
                # The request in flight is answered, then the connection closes.
                assert await busy.read_frame() == (0xBEEF, 2, registers_reply([11, 22, 33]))
                assert await busy.expect_closed() == b""
            assert finished.is_set()
            assert not server.running
            stats = server.statistics
            assert stats.requests == stats.responses == 2
            assert stats.connections_active == 0
            assert stats.idle_timeouts == 0
        for client in (idle, busy):
            await client.aclose()
        assert package_tasks() == []
        assert open_fds() == fds_before
        await assert_port_closed(port)


async def test_shutdown_during_a_steady_stream_of_requests_ends_with_whole_answers_and_eof() -> (
    None
):
    # The client (threads with blocking sockets, so that it keeps sending while the server
    # runs) never stops sending: when the server stops, bytes it has not read are in its
    # socket. Closing such a socket resets the connection, which can destroy answers on their
    # way (a client once got half an answer); the server half-closes and drops the rest
    # instead, so the client reads whole answers in order, then the end.
    request = b"".join(adu(7, 1, read_holding(0, 1)) for _ in range(50))
    answer = adu(7, 1, registers_reply([0]))
    enough = threading.Event()
    with trio.fail_after(20):
        async with serve_tcp(make_context(), port=0) as server:
            sock = socket.create_connection(server.address)

            def send_forever() -> None:
                with contextlib.suppress(OSError):
                    while True:
                        sock.sendall(request)

            def read_to_eof() -> bytes:
                data = b""
                while chunk := sock.recv(65536):  # ConnectionResetError on a reset
                    data += chunk
                    if len(data) > 2000 * len(answer):
                        enough.set()
                return data

            async def stop_midway() -> None:
                await trio.to_thread.run_sync(enough.wait)
                await server.shutdown(grace=5)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.to_thread.run_sync, send_forever)
                nursery.start_soon(stop_midway)
                received = await trio.to_thread.run_sync(read_to_eof)
            sock.close()
            assert server.statistics.responses > 2000
    # Every answer whole (no partial one at the end), and as many as the server sent.
    assert len(received) % len(answer) == 0
    assert received == answer * (len(received) // len(answer))
    assert len(received) // len(answer) == server.statistics.responses


async def test_shutdown_cancels_what_is_still_busy_when_the_grace_ends(
    autojump_clock: object,
) -> None:
    service = GatedService(make_context(1, 2), gated_units=[2])  # never released
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MbapClient(client_stream)
    with trio.fail_after(60):
        async with serve_tcp(service=service, port=0) as server, trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, server_stream)
            await client.send(adu(1, 2, read_holding(0, 1)))
            await wait_until(lambda: service.waiting == 1)
            start = trio.current_time()
            nursery.start_soon(server.shutdown, 3)
            await trio.sleep(2.9)
            assert server.running  # still draining: the grace has not ended
            assert service.waiting == 1
            await wait_until(lambda: not server.running)
            assert 3 <= trio.current_time() - start < 3.5
            assert await client.expect_closed() == b""  # cancelled: no answer
        assert service.waiting == 0
        assert server.statistics.connections_active == 0
        assert package_tasks() == []
