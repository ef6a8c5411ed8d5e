"""The connection engine over memory streams, with virtual time where time matters.

``server.handle_stream(stream)`` serves any trio stream as a connection, so these tests need
neither sockets nor real time: ``autojump_clock`` jumps over every wait.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_modbus.datastore import ModbusServerContext
from trio_modbus.pdu.codec import DecodeResult
from trio_modbus.pdu.requests import ReadRegistersRequest
from trio_modbus.server import serve_tcp
from trio_modbus.server._client import LINGER_QUIET
from trio_modbus.service import DatastoreService, RequestContext, Response

from ._mb import (
    MbapClient,
    SlowService,
    WatchedStream,
    adu,
    make_context,
    read_holding,
    registers_reply,
    write_register,
    write_registers,
)


def pipelined(count: int, start_tid: int = 0) -> tuple[bytes, list[tuple[int, int, bytes]]]:
    """``count`` reads of one register each (register i holds 1000 + i), and their answers."""
    data = b"".join(
        adu((start_tid + i) & 0xFFFF, 1, read_holding(i % 100, 1)) for i in range(count)
    )
    answers = [
        ((start_tid + i) & 0xFFFF, 1, registers_reply([1000 + i % 100])) for i in range(count)
    ]
    return data, answers


def numbered_context() -> ModbusServerContext:
    context = make_context()
    context[1].setValues(3, 0, [1000 + i for i in range(100)])
    return context


# -- every frame of every read ------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(1, 40),
    cuts=st.lists(st.integers(0, 480), max_size=12),
    max_in_flight=st.integers(1, 8),
)
def test_frames_split_anywhere_across_reads_are_all_answered_in_order(
    count: int, cuts: list[int], max_in_flight: int
) -> None:
    data, answers = pipelined(count, start_tid=65530)  # tids wrap around
    points = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    pieces = [data[a:b] for a, b in itertools.pairwise(points)]

    async def main() -> None:
        server = serve_tcp(numbered_context(), max_in_flight=max_in_flight)
        client_stream, server_stream = trio.testing.memory_stream_pair()
        client = MbapClient(client_stream)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, server_stream)
            for piece in pieces:
                await client.send(piece)
                await trio.testing.wait_all_tasks_blocked()  # one read per piece
            assert await client.read_frames(count) == answers
            await client.aclose()
        assert server.statistics.requests == server.statistics.responses == count

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_at_most_max_in_flight_requests_wait_for_their_answers(
    autojump_clock: object,
) -> None:
    limit = 4
    count = 100
    context = numbered_context()
    inner = DatastoreService(context)
    watched: WatchedStream | None = None
    executed = 0
    most = 0

    async def service(request: DecodeResult, ctx: RequestContext) -> Response | None:
        nonlocal executed, most
        executed += 1
        assert watched is not None
        most = max(most, executed - watched.replies_sent)
        return await inner(request, ctx)

    server = serve_tcp(service=service, max_in_flight=limit)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    watched = WatchedStream(server_stream)
    client = MbapClient(client_stream)
    data, answers = pipelined(count)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, watched)
            await client.send(data)  # all 100 in one read
            assert await client.read_frames(count) == answers
            await client.aclose()
    assert executed == count
    assert most == limit  # pipelined up to the limit, never beyond


async def test_a_client_that_never_reads_is_throttled_with_bounded_memory(
    autojump_clock: object,
) -> None:
    limit = 8
    server = serve_tcp(numbered_context(), max_in_flight=limit, idle_timeout=3600)
    # Lockstep streams have no buffer: a send completes only when the other side reads.
    client_stream, server_stream = trio.testing.lockstep_stream_pair()
    watched = WatchedStream(server_stream)
    per_batch, batches = 6000, 3  # 72 000 bytes a batch: more than one read takes
    data, answers = pipelined(per_batch)
    sent = 0

    async def flood() -> None:
        nonlocal sent
        for _ in range(batches):
            await client_stream.send_all(data)
            sent += 1

    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, watched)
            nursery.start_soon(flood)
            await trio.sleep(300)  # five minutes (virtual) with nobody reading the answers
            assert sent == 0  # the first batch is not even taken in whole: sending blocks
            assert watched.received <= 65536  # one read, then the server stopped reading
            assert server.statistics.requests <= limit  # and parsed no more than the limit
            assert server.statistics.connections_active == 1  # throttled, not dropped
            # Once the client reads, everything goes through, in order.
            client = MbapClient(client_stream)
            for _ in range(batches):
                assert await client.read_frames(per_batch) == answers
            assert sent == batches
            await client_stream.aclose()
    assert server.statistics.requests == per_batch * batches


async def test_a_client_that_never_reads_loses_its_slot_after_idle_timeout(
    autojump_clock: object,
) -> None:
    server = serve_tcp(numbered_context(), max_in_flight=8, idle_timeout=10)
    client_stream, server_stream = trio.testing.lockstep_stream_pair()
    data, _ = pipelined(6000)

    async def flood() -> None:
        with trio.move_on_after(100), contextlib.suppress(trio.BrokenResourceError):
            await client_stream.send_all(data)  # broken when the server gives up

    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, server_stream)
            nursery.start_soon(flood)
            await trio.sleep(9.5)
            assert server.statistics.connections_active == 1  # blocked in send, still held
            await trio.sleep(1)
            assert server.statistics.connections_active == 0  # closed: the slot is free
    assert server.statistics.idle_timeouts == 1


class _FailingService:
    def __init__(self) -> None:
        self.custom_functions: dict[int, object] = {}
        self.calls = 0

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("the application's bug")
        return b"\x03\x02\x00\x2a"


async def test_a_service_that_raises_gets_04_and_the_connection_goes_on(
    autojump_clock: object,
) -> None:
    service = _FailingService()
    server = serve_tcp(service=service)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MbapClient(client_stream)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, server_stream)
            assert await client.request(1, 1, read_holding(0, 1)) == b"\x83\x04"
            assert await client.request(2, 1, read_holding(0, 1)) == b"\x03\x02\x00\x2a"
            await client_stream.aclose()
    assert service.calls == 2


async def test_a_trace_hook_that_raises_passes_the_data_on(autojump_clock: object) -> None:
    def broken(sending: bool, value: object) -> object:
        raise ValueError("hook bug")

    server = serve_tcp(numbered_context(), trace_packet=broken, trace_pdu=broken)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MbapClient(client_stream)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, server_stream)
            assert await client.request(1, 1, read_holding(0, 1)) == registers_reply([1000])
            await client_stream.aclose()


# -- idle timeout ------------------------------------------------------------------------------


async def test_an_idle_client_is_closed_after_idle_timeout(autojump_clock: object) -> None:
    server = serve_tcp(make_context(), idle_timeout=10)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MbapClient(client_stream)
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, server_stream)
            await trio.sleep(9.9)
            assert await client.request(1, 1, read_holding(0, 1)) == registers_reply([0])
            await trio.sleep(9.9)  # 19.8 s since connecting, 9.9 s since the request
            assert await client.request(2, 1, read_holding(0, 1)) == registers_reply([0])
            last = trio.current_time()
            assert await client.expect_closed() == b""
            assert 10 <= trio.current_time() - last < 10.1
    stats = server.statistics
    assert stats.idle_timeouts == 1
    assert stats.connections_active == 0


async def test_a_request_that_takes_longer_than_idle_timeout_is_not_cut_off(
    autojump_clock: object,
) -> None:
    server = serve_tcp(service=SlowService(make_context(), delay=25), idle_timeout=10)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MbapClient(client_stream)
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, server_stream)
            start = trio.current_time()
            assert await client.request(1, 1, read_holding(0, 1)) == registers_reply([0])
            assert trio.current_time() - start >= 25
            answered = trio.current_time()
            assert await client.expect_closed() == b""
            assert 10 <= trio.current_time() - answered < 10.1
    assert server.statistics.idle_timeouts == 1


class _SlowSilentService:
    """Unit 7: 25 s of work and no reply (as a broadcast would get); others: the datastore."""

    def __init__(self, context: ModbusServerContext) -> None:
        self.inner = DatastoreService(context)
        self.custom_functions = self.inner.custom_functions
        self.done = trio.Event()

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        if ctx.unit_id == 7:
            await trio.sleep(25)
            self.done.set()
            return None
        return await self.inner(request, ctx)


async def test_idle_time_counts_from_the_end_of_work_that_sent_no_reply(
    autojump_clock: object,
) -> None:
    # A request that takes longer than idle_timeout and gets no reply must not leave the
    # connection looking idle since the request arrived: the next request, 5 s later, is
    # answered, and the connection closes idle_timeout after that.
    service = _SlowSilentService(make_context())
    server = serve_tcp(service=service, idle_timeout=10)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MbapClient(client_stream)
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, server_stream)
            await client.send(adu(1, 7, read_holding(0, 1)))
            await service.done.wait()
            await trio.sleep(5)
            assert await client.request(2, 1, read_holding(0, 1)) == registers_reply([0])
            answered = trio.current_time()
            assert await client.expect_closed() == b""
            assert 10 <= trio.current_time() - answered < 10.1
    assert server.statistics.idle_timeouts == 1


async def test_no_idle_timeout_when_none(autojump_clock: object) -> None:
    server = serve_tcp(make_context(), idle_timeout=None)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MbapClient(client_stream)
    with trio.fail_after(100_000):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, server_stream)
            await trio.sleep(86_400)
            assert await client.request(1, 1, read_holding(0, 1)) == registers_reply([0])
            await client.aclose()
    assert server.statistics.idle_timeouts == 0


# -- graceful shutdown of streams ------------------------------------------------------------


async def test_shutdown_lets_a_stream_finish_its_request(autojump_clock: object) -> None:
    context = make_context()
    context[1].setValues(3, 0, [77])
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MbapClient(client_stream)
    with trio.fail_after(100):
        async with serve_tcp(service=SlowService(context, delay=2), port=0) as server:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.handle_stream, server_stream)
                await client.send(adu(42, 1, read_holding(0, 1)))
                await trio.sleep(0.5)
                start = trio.current_time()
                await server.shutdown(grace=10)
                # The request's rest, and a moment for a client still sending (none here).
                assert 1.5 <= trio.current_time() - start < 1.5 + LINGER_QUIET + 0.01
                assert await client.read_frame() == (42, 1, registers_reply([77]))
                assert await client.expect_closed() == b""
            assert server.statistics.connections_active == 0


# -- trace hooks -------------------------------------------------------------------------------


async def test_trace_packet_sees_and_replaces_raw_bytes_both_ways(autojump_clock: object) -> None:
    context = make_context()
    context[1].setValues(3, 5, [55])
    seen: list[tuple[bool, bytes]] = []

    def trace_packet(sending: bool, data: bytes) -> bytes:
        seen.append((sending, data))
        if not sending:  # the client asked for register 0: make it register 5
            return data.replace(read_holding(0, 1), read_holding(5, 1))
        return data[:-2] + b"\xbe\xef"

    server = serve_tcp(context, trace_packet=trace_packet)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MbapClient(client_stream)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.handle_stream, server_stream)
        assert await client.request(1, 1, read_holding(0, 1)) == registers_reply([0xBEEF])
        await client.aclose()
    assert seen == [
        (False, adu(1, 1, read_holding(0, 1))),
        (True, adu(1, 1, registers_reply([55]))),
    ]


async def test_trace_pdu_sees_and_replaces_requests_and_responses(autojump_clock: object) -> None:
    context = make_context()
    context[1].setValues(3, 5, [55])
    seen: list[tuple[bool, object]] = []

    def trace_pdu(sending: bool, pdu: object) -> object:
        seen.append((sending, pdu))
        if isinstance(pdu, ReadRegistersRequest):
            return dataclasses.replace(pdu, address=5)
        return registers_reply([0x1234]) if pdu == registers_reply([55]) else pdu

    server = serve_tcp(context, trace_pdu=trace_pdu)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MbapClient(client_stream)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.handle_stream, server_stream)
        assert await client.request(1, 1, read_holding(0, 1)) == registers_reply([0x1234])
        assert await client.request(2, 1, write_register(9, 3)) == write_register(9, 3)
        await client.aclose()
    assert seen[:2] == [
        (False, ReadRegistersRequest(3, 0, 1)),
        (True, registers_reply([55])),
    ]
    assert [sending for sending, _ in seen] == [False, True, False, True]
    assert context[1].getValues(3, 9, 1) == [3]


async def test_trace_connect_sees_a_stream_come_and_go(autojump_clock: object) -> None:
    events: list[bool] = []
    server = serve_tcp(make_context(), trace_connect=events.append)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.handle_stream, server_stream)
        await trio.testing.wait_all_tasks_blocked()
        assert events == [True]
        await client_stream.aclose()
    assert events == [True, False]


async def test_a_function_registered_on_the_service_later_is_served(
    autojump_clock: object,
) -> None:
    from trio_modbus.pdu import ModbusPDU

    class Echo(ModbusPDU):
        function_code = 0x41

        def __init__(self, **kwargs: object) -> None:
            super().__init__(**kwargs)
            self.payload = b""

        def decode(self, data: bytes) -> None:
            self.payload = data

        def encode(self) -> bytes:
            return self.payload

        def execute(self, context: object) -> Echo:
            return self

    server = serve_tcp(numbered_context())
    assert isinstance(server.service, DatastoreService)
    server.service.register(Echo)  # after the server was built
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MbapClient(client_stream)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, server_stream)
            assert await client.request(1, 1, b"\x41\x01\x02") == b"\x41\x01\x02"
            await client_stream.aclose()


# -- slow clients: a frame that has started must complete in time -----------------------------


async def _trickle(client: MbapClient, data: bytes, interval: float) -> None:
    """Send ``data`` one byte every ``interval`` seconds; stop quietly if the server closes."""
    for i in range(len(data)):
        try:
            await client.send(data[i : i + 1])
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        await trio.sleep(interval)


@pytest.mark.parametrize(
    ("options", "bound"),
    [({"idle_timeout": 10}, 10), ({"idle_timeout": None, "frame_timeout": 3}, 3)],
    ids=["default-bound-is-idle-timeout", "own-bound-without-idle-timeout"],
)
async def test_a_client_trickling_a_frame_is_closed_at_the_bound(
    autojump_clock: object, options: dict[str, float | None], bound: float
) -> None:
    # Slowloris: one byte every 2 s keeps the idle clock fresh, but the frame never completes
    # (a 207-byte write would take 414 s): the connection is closed `bound` s after its first
    # byte, and counted.
    server = serve_tcp(make_context(), **options)  # type: ignore[arg-type]
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MbapClient(client_stream)
    request = adu(1, 1, write_registers(0, list(range(100))))
    with trio.fail_after(1000):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, server_stream)
            # A complete request first: only the started frame counts, not the connection.
            await trio.sleep(bound * 0.8)
            assert await client.request(1, 1, read_holding(0, 1)) == registers_reply([0])
            first_byte = trio.current_time()
            nursery.start_soon(_trickle, client, request, 2.0)
            assert await client.expect_closed() == b""
            assert bound <= trio.current_time() - first_byte < bound + 2.1
    stats = server.statistics
    assert (stats.frame_timeouts, stats.idle_timeouts) == (1, 0)
    assert stats.connections_active == 0


async def test_slow_but_complete_requests_keep_being_served(autojump_clock: object) -> None:
    # Each 12-byte request takes 6.6 s to arrive (a byte every 0.6 s), under the 10 s bound;
    # twenty of them take over two minutes, far past it: every one is answered.
    server = serve_tcp(make_context(), idle_timeout=10)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MbapClient(client_stream)
    with trio.fail_after(1000):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, server_stream)
            start = trio.current_time()
            for tid in range(20):
                await _trickle(client, adu(tid, 1, read_holding(0, 1)), 0.6)
                assert await client.read_frame() == (tid, 1, registers_reply([0]))
            assert trio.current_time() - start > 120
            await client.aclose()
    stats = server.statistics
    assert (stats.responses, stats.frame_timeouts, stats.idle_timeouts) == (20, 0, 0)


async def test_a_frame_completed_in_time_clears_the_bound(autojump_clock: object) -> None:
    # A frame split in two, the halves 8 s apart (under the 10 s bound), then 9 s of silence
    # and another split frame: the first frame's bound does not carry over to the second.
    server = serve_tcp(make_context(), idle_timeout=10)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MbapClient(client_stream)
    request = adu(1, 1, read_holding(0, 1))
    with trio.fail_after(1000):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, server_stream)
            for _ in range(3):
                await client.send(request[:5])
                await trio.sleep(8)
                await client.send(request[5:])
                assert await client.read_frame() == (1, 1, registers_reply([0]))
                await trio.sleep(9)
            await client.aclose()
    assert server.statistics.frame_timeouts == 0


async def test_a_stream_whose_every_read_ends_mid_frame_is_not_cut_off(
    autojump_clock: object,
) -> None:
    # A busy pipelining client whose reads all end in the middle of a frame: each read
    # completes the frame left over from the last one, so no frame is ever late, however long
    # the stream goes on (here 27 reads 4 s apart, 108 s against a 10 s bound).
    server = serve_tcp(numbered_context(), idle_timeout=10)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MbapClient(client_stream)
    data, answers = pipelined(90)
    cut = 41  # frames are 12 bytes: every read ends inside one
    with trio.fail_after(1000):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, server_stream)
            for start in range(0, len(data), cut):
                await client.send(data[start : start + cut])
                await trio.sleep(4)
            assert await client.read_frames(len(answers)) == answers
            await client.aclose()
    assert server.statistics.frame_timeouts == 0
