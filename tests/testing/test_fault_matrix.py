"""Every fault action over every transport the how-to's fault table claims for it.

Each case is one row of ``CASES``: a fault (and its phase), and what the raw client must see
on the wire over each transport: the exact bytes, whether the connection ends (FIN or RST),
the delay in virtual time (memory streams, under ``autojump_clock``), and what the device's
record says (``faults`` with its note for a documented degradation, ``delivered``,
``raw_out``). One test function runs the whole table over the seven transports:

* ``memory``: MBAP over ``connect_memory`` (virtual time: delays are measured exactly);
* ``tcp``, ``tls``, ``udp``: MBAP over real sockets on 127.0.0.1;
* ``rtu_over_tcp``, ``ascii``: RTU and ASCII frames over TCP;
* ``serial``: RTU on a socat pty pair (``slow``).

On real sockets and ptys no duration is asserted, only effects and their order: after the
faulted request, a clean request follows on the same link, and its reply must be the very
next frame (so a fault that sends nothing, or too much, shows). Close and Reset end the link
instead.
"""

from __future__ import annotations

import math
import random
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
import trio.testing

from trio_modbus.testing import FakeDevice, faults, raw

TIMEOUT = 10  # seconds (Trio's clock: virtual on memory streams) any one exchange may take
SERIAL_BAUD = 115200

WRITE = raw.write_registers(5, [42])  # the faulted request: "after" executes it, "before" not
WRITE_OK = bytes.fromhex("10 0005 0001")
READ = raw.read_holding_registers(0, 2)  # the clean request that follows
READ_OK = bytes.fromhex("03 04 000a 0014")
SUBSTITUTE = bytes.fromhex("03 02 abcd")
GARBAGE_SEED = 1
FOLLOW_TID = 7  # the clean request's transaction id (MBAP)


def seeded_garbage(size: int) -> bytes:
    rng = random.Random(GARBAGE_SEED)
    return bytes(rng.randrange(256) for _ in range(size))


# -- transports ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transport:
    """How to serve the device and reach it with the raw client."""

    name: str
    framer: raw.FramerName
    closes: bool = True  # can end a connection (FIN, RST); UDP and serial cannot
    resets: bool = True  # can reset it (RST): a socket is under the stream
    datagrams: bool = False
    virtual: bool = False  # runs under autojump_clock: delays are measured

    @property
    def mbap(self) -> bool:
        return self.framer == "socket"

    def frame(self, pdu: bytes, tid: int = 1, unit: int = 1) -> bytes:
        """The frame of ``pdu`` in this transport's framing."""
        if self.framer == "socket":
            return raw.mbap(pdu, tid=tid, unit=unit)
        if self.framer == "rtu":
            return raw.rtu(pdu, unit=unit)
        return raw.ascii(pdu, unit=unit)


TRANSPORTS = {
    t.name: t
    for t in (
        Transport("memory", "socket", resets=False, virtual=True),
        Transport("tcp", "socket"),
        Transport("tls", "socket"),
        Transport("udp", "socket", closes=False, resets=False, datagrams=True),
        Transport("rtu_over_tcp", "rtu"),
        Transport("ascii", "ascii"),
        Transport("serial", "rtu", closes=False, resets=False),
    )
}
TRANSPORT_PARAMS = [
    pytest.param(t, id=name, marks=[pytest.mark.slow] if name == "serial" else [])
    for name, t in TRANSPORTS.items()
]


@pytest.fixture(params=TRANSPORT_PARAMS)
def transport(request: pytest.FixtureRequest) -> Transport:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def clock(transport: Transport) -> trio.abc.Clock | None:
    """Trio's clock for the test (pytest-trio takes a Clock among the test's arguments)."""
    return trio.testing.MockClock(autojump_threshold=0) if transport.virtual else None


@dataclass
class Link:
    """A served device: ``connect()`` opens a raw client to it (``async with``)."""

    connect: Callable[[], AbstractAsyncContextManager[raw.RawClient]]
    server: Any = None  # None for a memory stream


@asynccontextmanager
async def serving(
    dev: FakeDevice, transport: Transport, request: pytest.FixtureRequest, **options: object
) -> AsyncIterator[Link]:
    """Serve ``dev`` over ``transport`` while in the block."""
    name = transport.name
    if name == "memory":

        @asynccontextmanager
        async def in_memory() -> AsyncIterator[raw.RawClient]:
            async with dev.connect_memory() as stream, raw.RawClient(stream) as client:
                yield client

        yield Link(in_memory)
    elif name == "tls":
        files = request.getfixturevalue("tls_files")
        context = ssl.create_default_context(cafile=files.ca)
        async with dev.serve_tls(
            certfile=files.server_cert, keyfile=files.server_key, **options
        ) as server:
            yield Link(lambda: raw.connect(server.address, ssl_context=context), server)
    elif name == "udp":
        async with dev.serve_udp(**options) as server:
            yield Link(lambda: raw.connect_udp(server.address), server)
    elif name == "serial":
        pair = request.getfixturevalue("socat_pair")
        async with dev.serve_serial(pair.server, baudrate=SERIAL_BAUD, **options) as server:
            await server.port_open.wait()
            yield Link(lambda: raw.open_serial(pair.client, baudrate=SERIAL_BAUD), server)
    else:
        framer = {"tcp": "socket", "rtu_over_tcp": "rtu", "ascii": "ascii"}[name]
        async with dev.serve_tcp(framer=framer, **options) as server:
            yield Link(lambda: raw.connect(server.address, framer=framer), server)


def make_device() -> FakeDevice:
    return FakeDevice({1: {"holding_registers": {0: [10, 20]}}})


# -- the cases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """What one faulted request gives on one transport."""

    wire: bytes  # every byte the client receives for it
    closed: str | None = None  # None, "fin" or "rst": the connection ends after ``wire``
    note: str | None = None  # a documented degradation: the record's note says so
    delivered: bool = True  # record.delivered
    out: bytes | str | None = "wire"  # record.raw_out ("wire": the same bytes as ``wire``)
    chunks: list[bytes] | None = None  # the datagrams (UDP) or reads (memory) it comes in


Expect = Callable[["Transport", int], Seen]  # (transport, the request's tid) → what it gives


@dataclass(frozen=True)
class Case:
    """One fault, and what it does on each transport."""

    id: str
    action: faults.Fault
    expect: Expect
    phase: str | None = None
    executed: bool = True  # whether the faulted write reaches the datastore
    rule: dict[str, object] = field(default_factory=lambda: {"nth": 1})
    requests: int = 1  # faulted requests sent (Busy: busy twice)
    warm_up: bool = False  # a clean request first (StaleReply resends its reply)
    delay: float = 0.0  # virtual seconds until its bytes are all in (memory only)


def _reply(pdu: bytes, unit: int = 1) -> Expect:
    return lambda t, tid: Seen(t.frame(pdu, tid, unit))


def _nothing(t: Transport, tid: int) -> Seen:
    return Seen(b"", delivered=False, out=None)


def _mbap_only(alter: Callable[[int], bytes]) -> Expect:
    """A fault on an MBAP header field: RTU and ASCII frames have none (noted, unaltered)."""

    def expect(t: Transport, tid: int) -> Seen:
        if t.mbap:
            return Seen(alter(tid))
        return Seen(
            t.frame(WRITE_OK, tid), note=f"(not applied: no such field in a {t.framer} frame)"
        )

    return expect


def _corrupt_checksum(t: Transport, tid: int) -> Seen:
    good = t.frame(WRITE_OK, tid)
    if t.framer == "rtu":
        return Seen(good[:-1] + bytes([good[-1] ^ 0xFF]))
    if t.framer == "ascii":
        return Seen(raw.ascii(WRITE_OK, lrc=int(good[-4:-2], 16) ^ 0xFF))
    return Seen(good, note="(not applied: no such field in a socket frame)")


def _truncate(keep: int | None) -> Expect:
    def expect(t: Transport, tid: int) -> Seen:
        good = t.frame(WRITE_OK, tid)
        return Seen(good[: keep if keep is not None else len(good) // 2])

    return expect


def _garbage(size: int, then_close: bool = False) -> Expect:
    def expect(t: Transport, tid: int) -> Seen:
        data = seeded_garbage(size)
        if then_close and t.closes:
            return Seen(data, closed="fin", delivered=False)
        note = "(not closed: this transport cannot close)" if then_close else None
        return Seen(data, note=note, delivered=False)

    return expect


def _split(t: Transport, tid: int) -> Seen:
    good = t.frame(WRITE_OK, tid)
    size = -(-len(good) // 3)
    pieces = [good[i : i + size] for i in range(0, len(good), size)]
    return Seen(good, chunks=pieces if t.datagrams or t.virtual else None)


def _twice(first: bytes) -> Expect:
    """``first`` (a PDU: the reply again, or the request's echo), then the reply."""

    def expect(t: Transport, tid: int) -> Seen:
        chunks = [t.frame(first, tid), t.frame(WRITE_OK, tid)]
        return Seen(b"".join(chunks), chunks=chunks if t.datagrams else None)

    return expect


def _ended(reset: bool) -> Expect:
    def expect(t: Transport, tid: int) -> Seen:
        if not t.closes:
            return Seen(b"", note="(no reply instead: this transport cannot close)",
                        delivered=False, out=None)  # fmt: skip
        if reset and not t.resets:
            return Seen(b"", closed="fin", note="(closed, not reset: no socket to reset)",
                        delivered=False, out=None)  # fmt: skip
        return Seen(b"", closed="rst" if reset else "fin", delivered=False, out=None)

    return expect


def _stale(t: Transport, tid: int) -> Seen:
    # The previous reply on this link (the warm-up read's, its tid 1) instead of this one.
    return Seen(t.frame(READ_OK, 1), delivered=False)


CASES = [
    Case("delay-before", faults.Delay(0.1), _reply(WRITE_OK), phase="before", delay=0.1),
    Case("delay-after", faults.Delay(0.1), _reply(WRITE_OK), phase="after", delay=0.1),
    Case("no-reply-before", faults.NoReply(), _nothing, phase="before", executed=False),
    Case("no-reply-after", faults.NoReply(), _nothing, phase="after"),
    Case("exception-before", faults.ExceptionReply(4), _reply(b"\x90\x04"), executed=False),
    Case("exception-after", faults.ExceptionReply(0x0B), _reply(b"\x90\x0b"), phase="after"),
    Case(
        "busy-twice-then-ok",
        faults.Busy(),
        _reply(b"\x90\x06"),
        executed=False,
        rule={"times": 2},
        requests=2,
    ),
    Case(
        "substitute-before",
        faults.Substitute(SUBSTITUTE),
        _reply(SUBSTITUTE),
        executed=False,
    ),
    Case(
        "substitute-after",
        faults.Substitute(SUBSTITUTE),
        _reply(SUBSTITUTE),
        phase="after",
    ),
    Case(
        "wrong-tid",
        faults.WrongTransactionId(offset=0x100),
        _mbap_only(lambda tid: raw.mbap(WRITE_OK, tid=tid + 0x100)),
    ),
    Case("wrong-unit", faults.WrongUnit(), _reply(WRITE_OK, unit=2)),
    Case("wrong-unit-9", faults.WrongUnit(reply_unit=9), _reply(WRITE_OK, unit=9)),
    Case("stale-reply", faults.StaleReply(), _stale, warm_up=True, rule={"nth": 2}),
    Case("corrupt-checksum", faults.CorruptChecksum(), _corrupt_checksum),
    Case(
        "corrupt-header-protocol",
        faults.CorruptHeader("protocol"),
        _mbap_only(lambda tid: raw.mbap(WRITE_OK, tid=tid, protocol=0xFFFF)),
    ),
    Case(
        "corrupt-header-length",
        faults.CorruptHeader("length"),
        _mbap_only(lambda tid: raw.mbap(WRITE_OK, tid=tid, length=len(WRITE_OK) + 1 + 5)),
    ),
    Case("truncate-half", faults.Truncate(), _truncate(None)),
    Case("truncate-3", faults.Truncate(keep=3), _truncate(3)),
    Case("garbage-after", faults.Garbage(size=5), _garbage(5)),
    Case("garbage-before", faults.Garbage(size=5), _garbage(5), phase="before", executed=False),
    Case("garbage-then-close", faults.Garbage(size=4, then_close=True), _garbage(4, True)),
    Case("split", faults.Split(pieces=3, gap=0.05), _split, delay=0.1),
    Case("duplicate", faults.Duplicate(), _twice(WRITE_OK)),
    Case("local-echo", faults.LocalEcho(), _twice(WRITE)),
    Case("close-before", faults.Close(), _ended(reset=False), phase="before", executed=False),
    Case("close-after", faults.Close(), _ended(reset=False), phase="after"),
    Case("reset-before", faults.Reset(), _ended(reset=True), phase="before", executed=False),
    Case("reset-after", faults.Reset(), _ended(reset=True), phase="after"),
]


# -- the matrix ----------------------------------------------------------------------------------


@dataclass
class Received:
    chunks: list[tuple[float, bytes]]  # (Trio time, bytes) of each read
    closed: raw.ConnectionClosed | None

    @property
    def data(self) -> bytes:
        return b"".join(chunk for _, chunk in self.chunks)


async def receive(client: raw.RawClient, size: float) -> Received:
    """Read until ``size`` bytes came (``math.inf``: until the connection ends)."""
    chunks: list[tuple[float, bytes]] = []
    try:
        while sum(len(chunk) for _, chunk in chunks) < size:
            data = await client.receive_bytes()
            chunks.append((trio.current_time(), data))
    except raw.ConnectionClosed as closed:
        return Received(chunks, closed)
    return Received(chunks, None)


async def settled(dev: FakeDevice, count: int) -> None:
    """Wait until the device has received ``count`` requests and is done with them."""
    await dev.recorder.wait_for(count=count)
    await trio.testing.wait_all_tasks_blocked()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_fault_on_the_wire(
    case: Case, transport: Transport, clock: trio.abc.Clock | None, request: pytest.FixtureRequest
) -> None:
    dev = make_device()
    rule = dev.faults.add(case.action, phase=case.phase, seed=GARBAGE_SEED, **case.rule)  # type: ignore[arg-type]
    first = 2 if case.warm_up else 1  # the tid (and seq) of the first faulted request
    tids = range(first, first + case.requests)
    seen = {tid: case.expect(transport, tid) for tid in tids}
    closes = any(s.closed for s in seen.values())
    with trio.fail_after(TIMEOUT):
        async with serving(dev, transport, request) as link, link.connect() as client:
            if case.warm_up:
                reply = await client.request(READ, tid=1)
                assert reply.raw == transport.frame(READ_OK, 1)
            for tid in tids:
                start = trio.current_time()
                await client.send_bytes(transport.frame(WRITE, tid))
                got = await receive(client, math.inf if closes else len(seen[tid].wire))
                assert got.data == seen[tid].wire
                if seen[tid].chunks is not None:
                    assert [chunk for _, chunk in got.chunks] == seen[tid].chunks
                if transport.virtual and got.chunks:
                    arrived = [when - start for when, _ in got.chunks]
                    assert arrived[-1] == pytest.approx(case.delay)
                    if isinstance(case.action, faults.Split):
                        assert arrived == pytest.approx([0, 0.05, 0.1])
                if closes:
                    assert got.closed is not None, "the connection should have ended"
                    assert got.closed.reset == (seen[tid].closed == "rst")
                else:
                    assert got.closed is None
            if not closes:
                # The next frame on the link is the clean request's reply: nothing more came
                # for the faulted one (and the link still works).
                await settled(dev, tids[-1])
                reply = await client.request(READ, tid=FOLLOW_TID)
                assert reply.raw == transport.frame(READ_OK, FOLLOW_TID)

    assert rule.fired == case.requests
    assert dev.datastore[1].holding_registers[5] == (42 if case.executed else 0)
    for tid in tids:
        record, want = dev.recorder[tid - 1], seen[tid]
        assert record.seq == tid
        note = [] if want.note is None else [want.note]
        assert record.faults == [rule.label(), *note]
        assert record.delivered is want.delivered
        assert record.raw_out == (want.wire if want.out == "wire" else want.out)
        assert record.transport == ("tcp" if transport.name in ("rtu_over_tcp", "ascii")
                                    else transport.name)  # fmt: skip
    if not closes:
        follow = dev.recorder[-1]
        assert (follow.faults, follow.delivered) == ([], True)
        assert follow.raw_out == transport.frame(READ_OK, FOLLOW_TID)


# -- what the table cannot show ------------------------------------------------------------------

REAL_LINKS = [p for p in TRANSPORT_PARAMS if p.id not in ("memory", "serial")]


@pytest.mark.parametrize("transport", REAL_LINKS)
async def test_a_delayed_reply_is_overtaken_by_another_links(
    transport: Transport, request: pytest.FixtureRequest
) -> None:
    """On real sockets a delay shows as order: another link's reply comes first."""
    dev = make_device()
    dev.faults.add(faults.Delay(0.3), connection=1)
    with trio.fail_after(TIMEOUT):
        async with serving(dev, transport, request) as link, link.connect() as slow:
            await slow.send_bytes(transport.frame(WRITE, 1))
            await dev.recorder.wait_for(count=1)  # the device has it, and waits
            async with link.connect() as fast:
                reply = await fast.request(READ, tid=2)
                assert reply.raw == transport.frame(READ_OK, 2)
            assert await slow.receive_bytes(timeout=0) == b""  # still waiting
            reply = await slow.receive_frame()
            assert reply is not None and reply.raw == transport.frame(WRITE_OK, 1)
    assert [r.connection for r in dev.recorder] == [1, 2]
    assert [r.delivered for r in dev.recorder] == [True, True]
    assert dev.recorder[0].faults == ["Delay(seconds=0.3, jitter=0.0)"]


async def _until(condition: Callable[[], bool]) -> None:
    """Let the device run until ``condition`` holds (the caller bounds the wait)."""
    while not condition():
        await trio.testing.wait_all_tasks_blocked(0.005)


async def test_refuse_closes_the_first_connection_and_serves_the_next(
    transport: Transport, clock: trio.abc.Clock | None, request: pytest.FixtureRequest
) -> None:
    """TCP, TLS (and RTU, ASCII over TCP, memory): the refused connection ends with a FIN and
    no byte; a datagram (UDP) is ignored; a serial port is closed and opened again. Never a
    record: the refused link carries no request."""
    dev = make_device()
    rule = dev.faults.add(faults.Refuse(), connection=1)
    options = {"reopen_delay": 0.05} if transport.name == "serial" else {}
    with trio.fail_after(TIMEOUT):
        async with serving(dev, transport, request, **options) as link:
            if transport.name == "serial":
                # The device refuses the port's first opening: it closes it, opens it again.
                await _until(lambda: rule.fired == 1)
                await link.server.port_open.wait()  # opened again
            elif transport.datagrams:
                async with link.connect() as client:
                    await client.send_bytes(transport.frame(READ, 1))
                    await _until(lambda: rule.fired == 1)
            else:
                async with link.connect() as client:
                    with pytest.raises(raw.ConnectionClosed) as closed:
                        await client.receive_bytes()
                    assert (closed.value.reset, closed.value.pending) == (False, b"")
            async with link.connect() as client:
                reply = await client.request(READ, tid=2)
                assert reply.raw == transport.frame(READ_OK, 2)
    assert rule.fired == 1
    assert [r.connection for r in dev.recorder] == [2]


@pytest.mark.parametrize(
    "transport", [p for p in TRANSPORT_PARAMS if p.id in ("tcp", "rtu_over_tcp")]
)
async def test_the_recorder_under_pipelining(
    transport: Transport, request: pytest.FixtureRequest
) -> None:
    """Five requests in one send, the third's reply lost after execution: the recorder keeps
    them in order, with their tids (MBAP), and only the third undelivered."""
    dev = FakeDevice({1: {"holding_registers": {0: [100, 101, 102, 103, 104]}}})
    dev.faults.add(faults.NoReply(), phase="after", nth=3)
    pdus = [
        raw.read_holding_registers(0, 1),
        raw.read_holding_registers(1, 1),
        raw.write_register(2, 999),  # executed, its reply lost
        raw.read_holding_registers(2, 1),  # sees the write: executed in order
        raw.read_holding_registers(4, 1),
    ]
    with trio.fail_after(TIMEOUT):
        async with serving(dev, transport, request) as link, link.connect() as client:
            await client.send_bytes(b"".join(transport.frame(p, t) for t, p in enumerate(pdus, 1)))
            replies = [await client.receive_frame() for _ in range(4)]
    assert [r.raw if r else None for r in replies] == [
        transport.frame(bytes.fromhex("03 02 0064"), 1),
        transport.frame(bytes.fromhex("03 02 0065"), 2),
        transport.frame(bytes.fromhex("03 02 03e7"), 4),
        transport.frame(bytes.fromhex("03 02 0068"), 5),
    ]
    records = list(dev.recorder)
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert [r.transaction_id for r in records] == ([1, 2, 3, 4, 5] if transport.mbap else [0] * 5)
    assert [r.function_code for r in records] == [3, 3, 6, 3, 3]
    assert [r.delivered for r in records] == [True, True, False, True, True]
    assert [r.raw_in for r in records] == [transport.frame(p, t) for t, p in enumerate(pdus, 1)]
    assert records[2].raw_out is None and records[2].response is None
    assert records[2].faults == ["NoReply()"]
    assert [r.raw_out for r in records[:2] + records[3:]] == [r.raw for r in replies if r]
    assert {r.connection for r in records} == {1}
    assert dev.datastore[1].holding_registers[2] == 999
