"""``SocketStream``: the lean stream the TCP server gives each connection.

Its ``receive_some`` yields to the scheduler once before it reads (the connection engine
relies on that for fairness between connections: it no longer yields after sending), takes
what the socket holds, and waits only when the socket holds nothing. These tests pin that
contract on real socket pairs: a checkpoint on every call, cancellation before any byte is
taken, waiting, end of stream, and the errors of a broken or closed socket.
"""

from __future__ import annotations

import socket as stdlib_socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from trio_modbus.server._stream import SocketStream


@asynccontextmanager
async def stream_pair() -> AsyncIterator[tuple[SocketStream, stdlib_socket.socket]]:
    """A SocketStream and the plain (blocking) socket at the other end."""
    ours, theirs = stdlib_socket.socketpair()
    stream = SocketStream(ours)
    try:
        yield stream, theirs
    finally:
        theirs.close()
        await stream.aclose()


async def test_data_ready_is_one_checkpoint() -> None:
    async with stream_pair() as (stream, peer):
        peer.sendall(b"abc")
        with trio.testing.assert_checkpoints():
            assert await stream.receive_some() == b"abc"


async def test_cancelled_before_any_byte_is_taken() -> None:
    async with stream_pair() as (stream, peer):
        peer.sendall(b"kept")
        with trio.CancelScope() as scope:
            scope.cancel()
            await stream.receive_some()
        assert scope.cancelled_caught
        assert await stream.receive_some() == b"kept"  # nothing was lost


async def test_waits_for_data() -> None:
    async with stream_pair() as (stream, peer), trio.open_nursery() as nursery:
        got: list[bytes] = []

        async def receiver() -> None:
            got.append(await stream.receive_some())

        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []  # parked in epoll, not spinning
        peer.sendall(b"late")
    assert got == [b"late"]


async def test_waiting_is_cancellable() -> None:
    async with stream_pair() as (stream, _peer):
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(stream.receive_some)
                await trio.testing.wait_all_tasks_blocked()
                scope.cancel()
        assert scope.cancelled_caught


async def test_max_bytes() -> None:
    async with stream_pair() as (stream, peer):
        peer.sendall(b"0123456789")
        assert await stream.receive_some(4) == b"0123"
        assert await stream.receive_some() == b"456789"


async def test_end_of_stream() -> None:
    async with stream_pair() as (stream, peer):
        peer.sendall(b"last")
        peer.shutdown(stdlib_socket.SHUT_WR)
        assert await stream.receive_some() == b"last"
        assert await stream.receive_some() == b""
        assert await stream.receive_some() == b""


async def test_reset_is_broken_resource() -> None:
    listener = stdlib_socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = stdlib_socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    listener.close()
    stream = SocketStream(accepted)
    # SO_LINGER 0: closing sends an RST instead of a FIN.
    client.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()
    with pytest.raises(trio.BrokenResourceError):
        await stream.receive_some()
    await stream.aclose()


async def test_closed_stream() -> None:
    async with stream_pair() as (stream, _peer):
        await stream.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await stream.receive_some()


async def test_closed_while_waiting() -> None:
    raised: list[BaseException] = []

    async def receiver(stream: SocketStream) -> None:
        try:
            await stream.receive_some()
        except trio.ClosedResourceError as exc:
            raised.append(exc)

    async with stream_pair() as (stream, _peer), trio.open_nursery() as nursery:
        nursery.start_soon(receiver, stream)
        await trio.testing.wait_all_tasks_blocked()
        await stream.aclose()
    assert len(raised) == 1


async def test_send_nowait_and_send_all() -> None:
    async with stream_pair() as (stream, peer):
        assert stream.send_nowait(b"now") == 3
        await stream.send_all(b" and all")
        peer.settimeout(5)
        assert peer.recv(100) == b"now and all"
