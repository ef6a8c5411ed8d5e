"""The per-client hooks: ``stream_wrapper`` (byte level), ``session_hook`` (around a client),
and replies counted once their bytes reached the transport."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from trio_modbus import ServiceError
from trio_modbus.pdu import ExceptionCode, ModbusPDU
from trio_modbus.pdu.codec import DecodeResult
from trio_modbus.server import Datagram, Session, serve_tcp, serve_tls, serve_udp
from trio_modbus.service import DatastoreService, RequestContext, Response

from .._tls import TlsFiles
from ._mb import (
    MbapClient,
    adu,
    connect,
    make_context,
    read_holding,
    registers_reply,
    write_register,
)

TIMEOUT = 10


class Recorder(trio.abc.Stream):
    """A stream wrapper that keeps every byte received and sent."""

    def __init__(self, inner: trio.abc.Stream, session: Session) -> None:
        self.inner = inner
        self.session = session
        self.received = b""
        self.sent = b""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.sent += bytes(data)
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.inner.receive_some(max_bytes)
        self.received += data
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()


class CutAfterReceive(Recorder):
    """A fault: the connection breaks when the server tries to answer."""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.aclose()
        raise trio.BrokenResourceError("cut by the fault injector")


async def test_a_stream_wrapper_sees_every_byte_of_a_tcp_connection() -> None:
    wrappers: list[Recorder] = []

    def wrap(stream: trio.abc.Stream, session: Session) -> trio.abc.Stream:
        wrappers.append(Recorder(stream, session))
        return wrappers[-1]

    request = adu(1, 1, read_holding(0, 1))
    with trio.fail_after(TIMEOUT):
        async with serve_tcp(make_context(1), port=0, stream_wrapper=wrap) as server:
            client = await connect(server.address[1])
            assert await client.request(1, 1, read_holding(0, 1)) == registers_reply([0])
            await client.aclose()
            await trio.testing.wait_all_tasks_blocked()
    [recorder] = wrappers
    assert recorder.session.transport == "tcp"
    assert recorder.session.peer[0] == "127.0.0.1"
    assert recorder.received == request
    assert recorder.sent == adu(1, 1, registers_reply([0]))


async def test_the_wrapper_of_a_tls_connection_sees_plaintext(tls_files: TlsFiles) -> None:
    wrappers: list[Recorder] = []

    def wrap(stream: trio.abc.Stream, session: Session) -> trio.abc.Stream:
        wrappers.append(Recorder(stream, session))
        return wrappers[-1]

    options = {"certfile": tls_files.server_cert, "keyfile": tls_files.server_key}
    with trio.fail_after(TIMEOUT):
        async with serve_tls(make_context(1), port=0, stream_wrapper=wrap, **options) as server:
            tcp = await trio.open_tcp_stream("127.0.0.1", server.address[1])
            tls = trio.SSLStream(
                tcp, ssl.create_default_context(cafile=tls_files.ca), server_hostname="localhost"
            )
            client = MbapClient(tls)
            assert await client.request(7, 1, read_holding(0, 1)) == registers_reply([0])
            await client.aclose()
    assert wrappers[0].session.transport == "tls"
    assert wrappers[0].received == adu(7, 1, read_holding(0, 1))


async def test_a_reply_lost_with_its_connection_is_not_counted(autojump_clock: object) -> None:
    server = serve_tcp(make_context(1), stream_wrapper=CutAfterReceive)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, server_stream)
            await client_stream.send_all(adu(1, 1, read_holding(0, 1)))
            assert await MbapClient(client_stream).expect_closed() == b""
    stats = server.statistics
    assert (stats.requests, stats.responses) == (1, 0)


async def test_replies_are_counted_when_sent(autojump_clock: object) -> None:
    server = serve_tcp(make_context(1), stream_wrapper=Recorder)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MbapClient(client_stream)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, server_stream)
            await client.send(adu(1, 1, read_holding(0, 1)) + adu(2, 1, read_holding(0, 1)))
            assert len(await client.read_frames(2)) == 2
            await client_stream.aclose()
    assert (server.statistics.requests, server.statistics.responses) == (2, 2)


def hook_recording(events: list[tuple[str, object]]) -> object:
    @asynccontextmanager
    async def hook(session: Session) -> AsyncIterator[None]:
        events.append(("enter", session))
        try:
            yield
        finally:
            events.append(("exit", session))

    return hook


async def test_the_session_hook_runs_around_each_connection() -> None:
    events: list[tuple[str, object]] = []
    with trio.fail_after(TIMEOUT):
        async with serve_tcp(make_context(1), port=0, session_hook=hook_recording(events)) as srv:
            first = await connect(srv.address[1])
            second = await connect(srv.address[1])
            assert await first.request(1, 1, read_holding(0, 1)) == registers_reply([0])
            assert await second.request(1, 1, read_holding(0, 1)) == registers_reply([0])
            assert [kind for kind, _ in events] == ["enter", "enter"]
            await first.aclose()
            await second.aclose()
            while len(events) < 4:
                await trio.sleep(0.01)
    sessions = {id(session) for _, session in events}
    assert len(sessions) == 2  # one session per connection, entered and exited once each
    assert sorted(kind for kind, _ in events) == ["enter", "enter", "exit", "exit"]


async def test_a_session_hook_that_raises_refuses_the_client() -> None:
    @asynccontextmanager
    async def refuse(session: Session) -> AsyncIterator[None]:
        raise PermissionError(f"not {session.peer}")
        yield  # pragma: no cover

    with trio.fail_after(TIMEOUT):
        async with serve_tcp(make_context(1), port=0, session_hook=refuse) as server:
            client = await connect(server.address[1])
            await client.send(adu(1, 1, read_holding(0, 1)))
            assert await client.expect_closed() == b""
            await client.aclose()
            await trio.testing.wait_all_tasks_blocked()
            assert server.statistics.requests == 0


async def test_the_session_hook_runs_around_each_datagram() -> None:
    events: list[tuple[str, object]] = []
    with trio.fail_after(TIMEOUT):
        async with serve_udp(make_context(1), port=0, session_hook=hook_recording(events)) as srv:
            with trio.socket.socket(type=trio.socket.SOCK_DGRAM) as sock:
                await sock.connect(("127.0.0.1", srv.address[1]))
                for tid in (1, 2):
                    await sock.send(adu(tid, 1, read_holding(0, 1)))
                    assert await sock.recv(1024) == adu(tid, 1, registers_reply([0]))
            await trio.testing.wait_all_tasks_blocked()
    assert [kind for kind, _ in events] == ["enter", "exit", "enter", "exit"]
    session = events[0][1]
    assert isinstance(session, Session) and session.transport == "udp"
    data, _sock = session.channel
    assert data == adu(1, 1, read_holding(0, 1))


class _SessionAware:
    """Answers from the datastore; closes the session after a write (seen through the hook)."""

    def __init__(self) -> None:
        self.inner = DatastoreService(make_context(1))
        self.sessions: list[Session] = []
        self.frames: list[int] = []

    @asynccontextmanager
    async def hook(self, session: Session) -> AsyncIterator[None]:
        self.sessions.append(session)
        yield

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        session = self.sessions[-1]
        assert session.frame is not None
        self.frames.append(session.frame.transaction_id)
        if request.function_code == 6:
            session.close()
        return await self.inner(request, ctx)


async def test_a_closed_session_ends_after_the_answers_of_its_read(autojump_clock: object) -> None:
    service = _SessionAware()
    server = serve_tcp(service=service, session_hook=service.hook)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MbapClient(client_stream)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, server_stream)
            assert await client.request(4, 1, read_holding(0, 1)) == registers_reply([0])
            await client.send(adu(5, 1, write_register(0, 9)) + adu(6, 1, read_holding(0, 1)))
            assert await client.read_frames(2) == [
                (5, 1, write_register(0, 9)),
                (6, 1, registers_reply([9])),
            ]
            assert await client.expect_closed() == b""
    assert service.frames == [4, 5, 6]  # the frame being answered, seen by the service
    assert service.sessions[0].frame is None  # and only while it is answered


@pytest.mark.parametrize("serve", [serve_tcp, serve_udp])
def test_unknown_options_are_refused_by_name(serve: object) -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'max_inflight'"):
        serve(make_context(1), max_inflight=3)  # type: ignore[operator]


class _Refusing:
    """Raises ServiceError for unit 2 (also for broadcasts), answers the rest itself."""

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        if ctx.unit_id in (0, 2):
            raise ServiceError(ExceptionCode.ILLEGAL_DATA_ADDRESS, "unit 2 is read-only")
        return b"\x03\x02\x00\x2a"


async def test_a_service_error_is_answered_with_its_exception_code(
    autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    server = serve_tcp(service=_Refusing(), broadcast=True)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MbapClient(client_stream)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, server_stream)
            assert await client.request(1, 2, read_holding(0, 1)) == b"\x83\x02"
            await client.send(adu(2, 0, write_register(0, 1)))  # a broadcast: never answered
            assert await client.request(3, 1, read_holding(0, 1)) == b"\x03\x02\x00\x2a"
            await client_stream.aclose()
    assert "failed" not in caplog.text  # an answer, not a failure
    assert (server.statistics.requests, server.statistics.responses) == (3, 2)


class _Odd:
    """Answers unit 1 with something that is not a response, unit 2 with a ModbusPDU."""

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        if ctx.unit_id == 1:
            return 42  # type: ignore[return-value]  # the application's bug
        return _FortyTwo()


class _FortyTwo(ModbusPDU):
    function_code = 0x03

    def encode(self) -> bytes:
        return b"\x02\x00\x2a"


async def test_a_reply_that_is_not_a_response_gets_04_and_the_server_goes_on(
    autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    server = serve_tcp(service=_Odd())
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MbapClient(client_stream)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, server_stream)
            assert await client.request(1, 1, read_holding(0, 1)) == b"\x83\x04"
            assert await client.request(2, 2, read_holding(0, 1)) == b"\x03\x02\x00\x2a"
            await client_stream.aclose()
    assert "cannot be sent" in caplog.text


async def test_a_datagram_wrapper_sees_and_alters_each_datagram() -> None:
    seen: list[bytes] = []
    sent: list[bytes] = []

    def wrap(datagram: Datagram, session: Session) -> Datagram:
        seen.append(datagram.data)
        if datagram.data[1] == 2:  # tid 2: its reply is lost on the way
            return dataclasses.replace(datagram, send=drop)

        async def record(reply: bytes) -> None:
            sent.append(reply)
            await datagram.send(reply)

        return dataclasses.replace(datagram, send=record)

    async def drop(reply: bytes) -> None:
        pass

    with trio.fail_after(TIMEOUT):
        async with serve_udp(make_context(1), port=0, datagram_wrapper=wrap) as server:
            with trio.socket.socket(type=trio.socket.SOCK_DGRAM) as sock:
                await sock.connect(("127.0.0.1", server.address[1]))
                for tid in (1, 2, 3):
                    await sock.send(adu(tid, 1, read_holding(0, 1)))
                assert await sock.recv(1024) == adu(1, 1, registers_reply([0]))
                assert await sock.recv(1024) == adu(3, 1, registers_reply([0]))
            await trio.testing.wait_all_tasks_blocked()
            assert server.statistics.requests == 3
    assert seen == [adu(tid, 1, read_holding(0, 1)) for tid in (1, 2, 3)]
    assert sent == [adu(tid, 1, registers_reply([0])) for tid in (1, 3)]


async def test_hooks_that_fail_close_their_client_and_the_server_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken_wrapper(stream: trio.abc.Stream, session: Session) -> trio.abc.Stream:
        raise RuntimeError("wrapper bug")

    @asynccontextmanager
    async def broken_exit(session: Session) -> AsyncIterator[None]:
        yield
        raise RuntimeError("hook bug on leaving")

    with trio.fail_after(TIMEOUT):
        async with serve_tcp(make_context(1), port=0, stream_wrapper=broken_wrapper) as server:
            client = await connect(server.address[1])
            await client.send(adu(1, 1, read_holding(0, 1)))
            assert await client.expect_closed() == b""
            await client.aclose()
            assert server.running
        async with serve_tcp(make_context(1), port=0, session_hook=broken_exit) as server:
            for tid in (1, 2):
                client = await connect(server.address[1])
                assert await client.request(tid, 1, read_holding(0, 1)) == registers_reply([0])
                await client.aclose()
            while caplog.text.count("failed on leaving") < 2:
                await trio.sleep(0.01)
            assert server.running
    assert "the stream wrapper failed" in caplog.text


async def test_a_failing_datagram_wrapper_drops_that_datagram_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def wrapper(datagram: Datagram, session: Session) -> Datagram:
        if datagram.data[1] == 1:
            raise RuntimeError("wrapper bug")
        return datagram

    with trio.fail_after(TIMEOUT):
        async with serve_udp(make_context(1), port=0, datagram_wrapper=wrapper) as server:
            with trio.socket.socket(type=trio.socket.SOCK_DGRAM) as sock:
                await sock.connect(("127.0.0.1", server.address[1]))
                await sock.send(adu(1, 1, read_holding(0, 1)))
                await sock.send(adu(2, 1, read_holding(0, 1)))
                assert await sock.recv(1024) == adu(2, 1, registers_reply([0]))
    assert "the datagram wrapper failed" in caplog.text
