"""The MBAP fast lane (``trio_modbus.server._lane``) answers as the general pipeline does.

A server built with a ``trace_pdu`` hook has no lane: every frame goes framer → decode →
DatastoreService → encode. That server is the reference. Each test sends the same bytes, cut
into the same reads, to a server with the lane and to the reference, over identical
datastores, and compares everything observable: the reply bytes, ``server.statistics``, the
diagnostic state (every counter and the event log), the datastore contents afterwards, and
each ``ValueList``'s register image against its values. A wrapper around ``MBAPLane.run``
notes the requests the lane answered, so that a test can tell the lane really took part (or
really stepped aside).

The property (``test_the_lane_answers_any_stream_exactly_as_the_general_pipeline``) holds two
more paths to the reference: the pymodbus-compatible server with a request handler that
overrides ``execute`` (every request through the handler, never the lane), and RTU over TCP
(``framer="rtu"``): the same requests framed as RTU get the same PDUs, counters, diagnostic
state and datastore as framed as MBAP.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import logging
import socket as stdlib_socket
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import event, given
from hypothesis import strategies as st

from trio_modbus import FramerType
from trio_modbus.datastore import (
    DiagnosticState,
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSparseDataBlock,
)
from trio_modbus.datastore.blocks import ValueList
from trio_modbus.datastore.diagnostics import EVENT_LOG_SIZE, ReceiveEvent, SendEvent
from trio_modbus.framing import FramingError, MBAPFramer, RTUFramer
from trio_modbus.pdu import ModbusPDU
from trio_modbus.pdu.codec import (
    MAX_READ_BITS,
    MAX_READ_REGISTERS,
    MAX_RW_WRITE_REGISTERS,
    MAX_WRITE_COILS,
    MAX_WRITE_REGISTERS,
)
from trio_modbus.server import (
    BaseServer,
    ModbusConnectedRequestHandler,
    ModbusTcpServer,
    TcpServer,
    serve_tcp,
)
from trio_modbus.server._lane import MBAPLane
from trio_modbus.server._stream import SocketStream
from trio_modbus.service import DatastoreService, ServiceLayer

from .._fuzz import fuzz_settings
from ._mb import (
    adu,
    bits_of,
    diagnostic,
    read_coils,
    read_holding,
    read_write,
    registers_of,
    registers_reply,
    rtu,
    split_frames,
    write_register,
    write_registers,
)


def reference_trace(sending: bool, pdu: Any) -> Any:
    """An identity ``trace_pdu`` hook: its only effect is to switch the lane off."""
    return pdu


# -- running a stream through a server --------------------------------------------------------


@contextlib.contextmanager
def lane_spy() -> Iterator[list[int]]:
    """Collect the transaction ids of the requests ``MBAPLane.run`` answers meanwhile."""
    answered: list[int] = []
    original = MBAPLane.run

    def run(self: MBAPLane, buf: bytes, pos: int, out: list[Any], room: int) -> tuple[int, int]:
        start = pos
        pos, count = original(self, buf, start, out, room)
        taken = []
        while start < pos:  # the frames the lane answered: buf[start:pos]
            taken.append(buf[start] << 8 | buf[start + 1])
            start += 6 + (buf[start + 4] << 8 | buf[start + 5])
        assert start == pos
        assert len(taken) == count
        answered.extend(taken)
        return pos, count

    MBAPLane.run = run  # type: ignore[method-assign]
    try:
        yield answered
    finally:
        MBAPLane.run = original  # type: ignore[method-assign]


class RecordingStream(trio.abc.Stream):
    """The server's side of a stream, recording how many replies each send carried."""

    def __init__(self, inner: trio.abc.Stream, sends: list[int]) -> None:
        self.inner = inner
        self.sends = sends

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        frames, rest = split_frames(bytes(data))
        assert rest == b"", "the server sent a partial frame"
        self.sends.append(len(frames))
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def exchange(server: BaseServer, chunks: Sequence[bytes], sends: list[int]) -> bytes:
    """Send ``chunks`` (the server reads each one on its own), then EOF; return every reply.

    ``sends`` gets the number of replies of each send the server makes (MBAP only).
    """
    client, server_side = trio.testing.memory_stream_pair()
    stream: trio.abc.Stream = server_side
    if server.framer is FramerType.SOCKET:
        stream = RecordingStream(server_side, sends)
    received = bytearray()
    with trio.fail_after(60):  # a guard against a hang only: nothing here waits for time
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, stream)
            # The server closes the stream at once on a protocol error; later sends then fail.
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                for chunk in chunks:
                    await client.send_all(chunk)
                    await trio.testing.wait_all_tasks_blocked()
                await client.send_eof()
            while data := await client.receive_some():
                received += data
    return bytes(received)


@dataclass
class Served:
    """One server after a stream: what it answered and the state it was left in."""

    server: BaseServer
    context: ModbusServerContext
    replies: bytes
    lane_tids: list[int]  # transaction ids of the requests the lane answered, in order
    sends: list[int]  # replies per send

    @property
    def lane_answered(self) -> int:
        return len(self.lane_tids)


async def serve_one(
    context: ModbusServerContext,
    chunks: Sequence[bytes],
    *,
    lane: bool,
    prepare: Callable[[BaseServer], None] | None = None,
    **options: Any,
) -> Served:
    # TcpServer rather than serve_tcp: it also takes ``broadcast`` (as the compat layer does).
    server = TcpServer(
        context, idle_timeout=None, trace_pdu=None if lane else reference_trace, **options
    )
    if prepare is not None:
        prepare(server)
    # The lane is on for the server under test and off for the reference.
    assert (server.pipeline.lane(MBAPFramer()) is not None) == lane
    sends: list[int] = []
    with lane_spy() as lane_tids:
        replies = await exchange(server, chunks, sends)
    return Served(server, context, replies, lane_tids, sends)


async def serve_compat(
    context: ModbusServerContext,
    chunks: Sequence[bytes],
    *,
    broadcast: bool,
    max_in_flight: int,
    ignore_missing_devices: bool,
) -> Served:
    """Serve ``chunks`` with the pymodbus-compatible server and a handler overriding
    ``execute``: the per-request path, where every request goes through the handler."""
    executed: list[int] = []  # transaction ids, as the handler saw them

    class PerRequest(ModbusConnectedRequestHandler):
        async def execute(self, request: Any) -> None:
            assert self.frame is not None
            executed.append(self.frame.transaction_id)
            await super().execute(request)

    compat = ModbusTcpServer(
        context,
        address=("127.0.0.1", 0),
        handler=PerRequest,
        broadcast_enable=broadcast,
        ignore_missing_devices=ignore_missing_devices,
    )
    sends: list[int] = []
    with lane_spy() as lane_tids:
        async with trio.open_nursery() as nursery:
            await nursery.start(compat.serve_forever)
            server = compat.native
            assert server is not None
            server.max_in_flight = max_in_flight  # not a pymodbus option
            replies = await exchange(server, chunks, sends)
            compat.server_close()
    assert len(executed) == server.statistics.requests  # each request through the handler
    return Served(server, context, replies, lane_tids, sends)


def rtu_requests(requests: Sequence[tuple[int, int, bytes]]) -> list[tuple[int, int, bytes]]:
    """The ``(tid, unit, pdu)`` requests an RTU client can send, each in one write.

    An RTU frame carries no length: its end comes from the function code (a fixed length, a
    byte count) or, for a function without a length rule, from the end of the write. A PDU
    cut short or lengthened against its function's layout is not one RTU frame (the framer
    resynchronises on it, as it must), so it is left out: the requests kept are those the
    framer takes whole, each from a frame boundary (where every kept request leaves it).
    """
    kept = []
    for tid, unit, pdu in requests:
        framer = RTUFramer()
        frames = framer.feed(rtu(unit, pdu))
        if [(f.unit_id, f.pdu) for f in frames] == [(unit, pdu)] and framer.pending == 0:
            kept.append((tid, unit, pdu))
    return kept


def diagnostics_of(diag: DiagnosticState) -> dict[str, Any]:
    """Every field of the diagnostic state, the event log included."""
    state = {name: getattr(diag, name) for name in DiagnosticState.__slots__ if name != "_events"}
    state["events"] = diag.events()
    return state


def datastore_of(context: ModbusServerContext) -> list[tuple[int, str, type, Any]]:
    """Every block of every device: (unit, store key, type of values, the values)."""
    rows = []
    for unit, device in context:
        for key, block in sorted(device.store.items()):
            values = block.values
            snapshot = dict(values) if isinstance(values, dict) else list(values)
            rows.append((unit, key, type(values), snapshot))
    return rows


def check_images(context: ModbusServerContext) -> None:
    """Each ValueList's image is its values packed, or None exactly when one does not fit."""
    for _unit, device in context:
        for block in device.store.values():
            values = block.values
            if type(values) is not ValueList:
                continue
            image = values.image()
            try:  # fits when every value is an int (a bool is one) in 0..0xFFFF
                packed: bytes | None = struct.pack(f">{len(values)}H", *values)
            except struct.error:
                packed = None
            assert image == packed


def assert_equivalent(lane: Served, ref: Served) -> None:
    assert ref.lane_answered == 0
    assert lane.replies == ref.replies
    assert lane.server.statistics == ref.server.statistics
    assert diagnostics_of(lane.server.diagnostics) == diagnostics_of(ref.server.diagnostics)
    assert datastore_of(lane.context) == datastore_of(ref.context)
    check_images(lane.context)
    check_images(ref.context)


async def serve_both(
    make_context: Callable[[], ModbusServerContext],
    chunks: Sequence[bytes],
    **options: Any,
) -> tuple[Served, Served]:
    """Serve ``chunks`` with and without the lane; check they agree; return both."""
    lane = await serve_one(make_context(), chunks, lane=True, **options)
    ref = await serve_one(make_context(), chunks, lane=False, **options)
    assert_equivalent(lane, ref)
    return lane, ref


def replies_of(data: bytes) -> list[tuple[int, int, bytes]]:
    frames, rest = split_frames(data)
    assert rest == b""
    return frames


# -- datastores -------------------------------------------------------------------------------


def registers(seed: int, count: int) -> list[int]:
    return [(seed * 7919 + i * 40503) & 0xFFFF for i in range(count)]


def bits(seed: int, count: int) -> list[bool]:
    return [(seed + i * i) % 3 == 0 for i in range(count)]


def seq(address: int, values: Sequence[Any]) -> ModbusSequentialDataBlock:
    return ModbusSequentialDataBlock(address, list(values))


class SubclassedDevice(ModbusDeviceContext):
    """A user's device context that serves protocol addresses below 15 only.

    The lane must leave it to the general pipeline, which calls ``validate``.
    """

    def validate(self, fx: int, address: int, count: int = 1) -> bool:
        return address + count <= 15 and super().validate(fx, address, count)


@dataclass(frozen=True)
class Layout:
    """Which datastore a generated case runs against (built twice, identically)."""

    single: bool  # one device for every unit id
    fallback: bool  # a unit-0 device, which serves unknown unit ids
    misfits: bool  # register values that do not fit in 16 bits, set in block.values
    plain_list: bool  # a block whose values were replaced by a plain list
    sparse_mutable: bool


def build_context(layout: Layout) -> ModbusServerContext:
    if layout.single:
        device = ModbusDeviceContext(
            co=seq(0, bits(1, MAX_READ_BITS + 10)),
            di=seq(0xFFF0, bits(2, 20)),  # 4 past protocol address 0xFFFF
            hr=seq(0, registers(3, 130)),
            ir=seq(0xFF80, registers(4, 130)),  # 2 past protocol address 0xFFFF
            zero_mode=True,
        )
        if layout.misfits:
            device.store["h"].values[5] = 70000
            device.store["i"].values[-1] = -1
        if layout.plain_list:
            device.store["d"].values = list(device.store["d"].values)
        return ModbusServerContext(devices=device, single=True)
    # Unit 1: pymodbus's default addressing (protocol address N is block address N + 1).
    unit1 = ModbusDeviceContext(
        co=seq(0, bits(5, 40)), di=seq(0, bits(6, 37)), hr=seq(0, registers(7, 30)),
        ir=seq(0, registers(8, 30)),
    )  # fmt: skip
    # Unit 2: zero_mode, every block at block address 100; reads of the maximum fit.
    unit2 = ModbusDeviceContext(
        co=seq(100, bits(9, MAX_READ_BITS + 10)), di=seq(100, bits(10, 40)),
        hr=seq(100, registers(11, 130)), ir=seq(100, registers(12, 28)), zero_mode=True,
    )  # fmt: skip
    # Unit 3: a sparse holding block (never the lane's).
    unit3 = ModbusDeviceContext(
        co=seq(0, bits(13, 20)), di=seq(0, bits(14, 20)), ir=seq(0, registers(15, 20)),
        hr=ModbusSparseDataBlock(
            {0: registers(16, 10), 20: registers(17, 5)}, mutable=layout.sparse_mutable
        ),
        zero_mode=True,
    )  # fmt: skip
    # Unit 4: a device-context subclass (never the lane's).
    unit4 = SubclassedDevice(
        co=seq(0, bits(18, 20)), di=seq(0, bits(19, 20)), hr=seq(0, registers(20, 20)),
        ir=seq(0, registers(21, 20)), zero_mode=True,
    )  # fmt: skip
    # Unit 5: FC 3 reads a block of its own, while 6, 16, 22 and 23 use "h".
    unit5 = ModbusDeviceContext(
        co=seq(0, bits(22, 20)), di=seq(0, bits(23, 20)), hr=seq(0, registers(24, 20)),
        ir=seq(0, registers(25, 20)), zero_mode=True,
    )  # fmt: skip
    unit5.register(3, "h3", seq(0, registers(26, 20)))
    devices: dict[int, ModbusDeviceContext] = {1: unit1, 2: unit2, 3: unit3, 4: unit4, 5: unit5}
    if layout.fallback:
        # Block addresses 0xFFF0..0x10003: protocol addresses 0xFFEF..0xFFFF (not zero_mode);
        # the last 3 values lie past the address space.
        devices[0] = ModbusDeviceContext(
            co=seq(0xFFF0, bits(27, 20)), di=seq(0xFFF0, bits(28, 20)),
            hr=seq(0xFFF0, registers(29, 20)), ir=seq(0xFFF0, registers(30, 20)),
        )  # fmt: skip
    if layout.misfits:
        unit1.store["h"].values[3] = 70000  # protocol address 2
        unit2.store["i"].values[0] = -1  # protocol address 100
        unit5.store["h3"].values[7] = 0x10000
    if layout.plain_list:
        unit1.store["i"].values = list(unit1.store["i"].values)
    return ModbusServerContext(devices=devices)


# -- request strategies -----------------------------------------------------------------------

u16 = st.integers(0, 0xFFFF)
# Near the blocks' edges (units 1, 3-5 from 0, unit 2 from 100, unit 0 and the single device
# up to 0xFFFF) and anywhere.
addresses = st.one_of(st.integers(0, 40), st.integers(95, 135), st.integers(0xFF7C, 0xFFFF), u16)


def quantities(limit: int) -> st.SearchStrategy[int]:
    """0, 1, the limit and one past it, small ones, and any 16-bit value."""
    return st.one_of(st.sampled_from([0, 1, 2, limit, limit + 1]), st.integers(0, 40), u16)


@st.composite
def read_pdus(draw: st.DrawFn) -> bytes:
    fc = draw(st.sampled_from([1, 2, 3, 4]))
    limit = MAX_READ_BITS if fc <= 2 else MAX_READ_REGISTERS
    return struct.pack(">BHH", fc, draw(addresses), draw(quantities(limit)))


@st.composite
def write_coil_pdus(draw: st.DrawFn) -> bytes:
    value = draw(st.one_of(st.sampled_from([0xFF00, 0x0000]), u16))
    return struct.pack(">BHH", 5, draw(addresses), value)


@st.composite
def write_register_pdus(draw: st.DrawFn) -> bytes:
    return struct.pack(">BHH", 6, draw(addresses), draw(u16))


@st.composite
def write_coils_pdus(draw: st.DrawFn) -> bytes:
    address = draw(addresses)
    count = draw(quantities(MAX_WRITE_COILS))
    size = min(draw(st.one_of(st.just((count + 7) // 8), st.integers(0, 8))), 247)
    byte_count = draw(st.one_of(st.just(size), st.just((count + 7) // 8), st.integers(0, 255)))
    data = draw(st.binary(min_size=size, max_size=size))
    return struct.pack(">BHHB", 15, address, count, byte_count & 0xFF) + data


@st.composite
def write_registers_pdus(draw: st.DrawFn) -> bytes:
    address = draw(addresses)
    count = draw(quantities(MAX_WRITE_REGISTERS))
    n = min(draw(st.one_of(st.just(count), st.integers(0, 8))), MAX_WRITE_REGISTERS)
    byte_count = draw(st.one_of(st.just(2 * n), st.just(2 * count), st.integers(0, 255)))
    values = draw(st.lists(u16, min_size=n, max_size=n))
    return struct.pack(f">BHHB{n}H", 16, address, count, byte_count & 0xFF, *values)


@st.composite
def read_write_pdus(draw: st.DrawFn) -> bytes:
    read_address = draw(addresses)
    read_count = draw(quantities(MAX_READ_REGISTERS))
    # Often a write range that overlaps the read range.
    write_address = draw(
        st.one_of(addresses, st.integers(-4, 4).map(lambda d: (read_address + d) & 0xFFFF))
    )
    write_count = draw(quantities(MAX_RW_WRITE_REGISTERS))
    n = min(draw(st.one_of(st.just(write_count), st.integers(0, 8))), MAX_RW_WRITE_REGISTERS)
    byte_count = draw(st.one_of(st.just(2 * n), st.just(2 * write_count), st.integers(0, 255)))
    values = draw(st.lists(u16, min_size=n, max_size=n))
    return struct.pack(
        f">BHHHHB{n}H", 23, read_address, read_count, write_address, write_count,
        byte_count & 0xFF, *values,
    )  # fmt: skip


diagnostic_pdus = st.builds(
    lambda sub, data: struct.pack(">BH", 8, sub) + data,
    # 04 enters listen-only mode, 01 leaves it, 0A clears the counters, 0B-12 report them.
    st.sampled_from([0x00, 0x01, 0x02, 0x03, 0x04, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10,
                     0x11, 0x12, 0x14, 0x99]),
    st.sampled_from([b"\x00\x00", b"\xff\x00", b"\x12\x34", b""]),
)  # fmt: skip
other_pdus = st.one_of(
    diagnostic_pdus,
    # Exception status, comm event counter and log (which report the diagnostic state),
    # server id, device identification, FIFO.
    st.sampled_from([b"\x07", b"\x0b", b"\x0c", b"\x11", b"\x2b\x0e\x01\x00", b"\x18\x00\x00"]),
    st.builds(lambda a, m, o: struct.pack(">BHHH", 0x16, a, m, o), addresses, u16, u16),
    st.builds(lambda fc, rest: bytes((fc,)) + rest, st.integers(0, 255), st.binary(max_size=12)),
)
lane_pdus = st.one_of(
    read_pdus(), write_register_pdus(), write_registers_pdus(), read_write_pdus()
)
pdus = st.one_of(lane_pdus, lane_pdus, write_coil_pdus(), write_coils_pdus(), other_pdus)


# (The strategies built from arguments are built once, below and with functools.cache: a new
# strategy object per draw costs more than the draw.)
_HOW = {n: st.sampled_from(["as built"] * n + ["longer", "shorter"]) for n in (6, 14)}


@st.composite
def tweaked(draw: st.DrawFn, inner: st.SearchStrategy[bytes], as_built: int = 6) -> bytes:
    """Mostly as built; sometimes longer or cut short (the length field follows)."""
    pdu = draw(inner)
    how = draw(_HOW[as_built])
    if how == "longer":
        pdu += draw(st.binary(min_size=1, max_size=2))
    elif how == "shorter" and len(pdu) > 1:
        pdu = pdu[: draw(st.one_of(st.just(len(pdu) - 1), st.integers(1, len(pdu) - 1)))]
    return pdu[:253]


_KIND = {1: "c", 5: "c", 15: "c", 2: "d", 4: "i"}  # the rest: "h"
# The protocol addresses each block serves, [low, high) (see build_context).
_SINGLE_REGIONS = {"c": (0, 2010), "d": (0xFFF0, 0x10000), "h": (0, 130), "i": (0xFF80, 0x10000)}
_UNIT_REGIONS = {
    1: {"c": (0, 39), "d": (0, 36), "h": (0, 29), "i": (0, 29)},
    2: {"c": (100, 2110), "d": (100, 140), "h": (100, 230), "i": (100, 128)},
    3: {"c": (0, 20), "d": (0, 20), "h": (0, 10), "i": (0, 20)},
    4: {"c": (0, 20), "d": (0, 20), "h": (0, 20), "i": (0, 20)},
    5: {"c": (0, 20), "d": (0, 20), "h": (0, 20), "i": (0, 20)},
}
_FALLBACK_REGION = (0xFFEF, 0x10000)


def aimed_region(layout: Layout, unit: int, fc: int) -> tuple[int, int]:
    """The protocol addresses [low, high) of the block ``unit`` and ``fc`` address."""
    kind = _KIND.get(fc, "h")
    if layout.single:
        return _SINGLE_REGIONS[kind]
    if unit in _UNIT_REGIONS:
        return _UNIT_REGIONS[unit][kind]
    return _FALLBACK_REGION


@functools.cache
@st.composite
def aimed_addresses(draw: st.DrawFn, region: tuple[int, int]) -> int:
    """Near the start or the end of the block, a step outside it included."""
    low, high = region
    start = st.integers(max(0, low - 2), low + 8)
    return draw(st.one_of(start, start, st.integers(max(0, high - 8), min(high, 0xFFFF))))


@st.composite
def aimed_pdus(draw: st.DrawFn, region: tuple[int, int], fc: int) -> bytes:
    """A well-formed request in the block or at its edges: mostly the lane's happy path."""
    address = draw(aimed_addresses(region))
    count = draw(st.integers(1, 6))
    if fc in (1, 2, 3, 4):
        return struct.pack(">BHH", fc, address, count)
    if fc == 5:
        return struct.pack(">BHH", 5, address, draw(st.sampled_from([0xFF00, 0])))
    if fc == 15:
        return struct.pack(">BHHBB", 15, address, count, 1, draw(st.integers(0, 63)))
    if fc == 22:
        return struct.pack(">BHHH", 22, address, draw(u16), draw(u16))
    new = draw(st.lists(u16, min_size=count, max_size=count))  # the values written
    if fc == 6:
        return struct.pack(">BHH", 6, address, new[0])
    if fc == 16:
        return struct.pack(f">BHHB{count}H", 16, address, count, 2 * count, *new)
    read_address = draw(aimed_addresses(region))
    return read_write(read_address, draw(st.integers(1, 6)), address, new)


@functools.cache
def aimed_frame_pdus(region: tuple[int, int], fc: int) -> st.SearchStrategy[bytes]:
    return tweaked(aimed_pdus(region, fc), as_built=14)


_TIDS = st.one_of(st.integers(0, 3), u16)
# (Booleans drawn from weighted lists: Hypothesis favours the bounds of small integer ranges,
# which would make the rare cases common.)
_AIMED = st.sampled_from([True, True, False])
_SINGLE_UNITS = st.sampled_from([1, 0, 7, 255])
_AIMED_UNITS = st.sampled_from([1, 2, 5, 1, 2, 5, 0, 3, 4, 6])  # mostly the lane's units
_OTHER_UNITS = st.sampled_from([1, 2, 3, 4, 5, 0, 6, 255])  # 0: fallback or broadcast
_AIMED_FCS = st.sampled_from([1, 2, 3, 4, 6, 16, 23, 3, 16, 23, 5, 15, 22])
_TWEAKED_PDUS = tweaked(pdus)
_BAD_LENGTH = st.sampled_from([False] * 59 + [True])


@functools.cache
@st.composite
def frames(draw: st.DrawFn, layout: Layout) -> bytes:
    tid = draw(_TIDS)
    aimed = draw(_AIMED)
    if layout.single:
        unit = draw(_SINGLE_UNITS)
    elif aimed:
        unit = draw(_AIMED_UNITS)
    else:
        unit = draw(_OTHER_UNITS)
    if aimed:
        fc = draw(_AIMED_FCS)
        pdu = draw(aimed_frame_pdus(aimed_region(layout, unit, fc), fc))
    else:
        pdu = draw(_TWEAKED_PDUS)
    length = len(pdu) + 1
    if draw(_BAD_LENGTH):
        # A length field that disagrees with the frame: the stream loses step, or is not
        # Modbus at all (outside 2..254).
        length = draw(st.sampled_from([0, 1, 2, length - 1, length + 1, 254, 255, 0xFFFF]))
    return struct.pack(">HHHB", tid, 0, length, unit) + pdu


@dataclass(frozen=True)
class Case:
    layout: Layout
    options: dict[str, Any]
    chunks: list[bytes]
    requests: list[tuple[int, int, bytes]]  # (tid, unit, pdu) of each well-formed MBAP frame


@st.composite
def cases(draw: st.DrawFn) -> Case:
    rarely = st.sampled_from([False, False, True])
    layout = draw(st.builds(Layout, st.booleans(), st.booleans(), rarely, rarely, st.booleans()))
    stream = draw(st.lists(frames(layout), min_size=2, max_size=25))
    requests = []
    for frame in stream:
        tid, protocol, length, unit = struct.unpack_from(">HHHB", frame)
        if protocol == 0 and length == len(frame) - 6:
            requests.append((tid, unit, frame[7:]))
    if draw(st.sampled_from([False] * 5 + [True])):
        # Not Modbus near the end: what came before is answered, nothing after.
        bad = struct.pack(">HHHB", draw(u16), draw(st.integers(1, 0xFFFF)), 6, 1)
        bad += read_holding(0, 1)
        where = max(0, len(stream) - draw(st.integers(0, 2)))
        stream.insert(where, bad)
    data = b"".join(stream)
    # How the server receives the stream: in one read, in a read per frame (as most clients
    # send), or cut anywhere, frame boundaries among the cuts or not.
    boundaries = list(itertools.accumulate(len(frame) for frame in stream))
    cuts = draw(
        st.one_of(
            st.just([]),
            st.just(boundaries),
            st.lists(st.integers(1, max(1, len(data) - 1)), max_size=6),
            st.lists(st.sampled_from(boundaries), max_size=6),
        )
    )
    points = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    options = {
        "broadcast": draw(st.booleans()),
        "max_in_flight": draw(st.sampled_from([1, 2, 3, 32])),
        "ignore_missing_devices": draw(st.booleans()),
    }
    return Case(layout, options, [data[a:b] for a, b in itertools.pairwise(points)], requests)


# -- the property -----------------------------------------------------------------------------


@contextlib.contextmanager
def server_logs_off() -> Iterator[None]:
    """Silence trio_modbus's loggers for a while.

    The generated streams make the servers log on purpose (service failures with their
    traceback, streams that are not Modbus): formatting those records for pytest's log
    capture would be about a fifth of the property's time, and they are not what it checks.
    """
    logger = logging.getLogger("trio_modbus")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


@pytest.mark.fuzz
@fuzz_settings(1000)
@given(case=cases())
def test_the_lane_answers_any_stream_exactly_as_the_general_pipeline(case: Case) -> None:
    """The lane, the compat per-request path and RTU over TCP, each against the reference."""
    kept = rtu_requests(case.requests)

    async def main() -> tuple[Served, ...]:
        def context() -> ModbusServerContext:
            return build_context(case.layout)

        lane = await serve_one(context(), case.chunks, lane=True, **case.options)
        ref = await serve_one(context(), case.chunks, lane=False, **case.options)
        compat = await serve_compat(context(), case.chunks, **case.options)
        # RTU over TCP against MBAP: the requests an RTU client can send (a write each for
        # RTU, whose frames without a length rule end with the write; MBAP's in one).
        mbap_chunks = [b"".join(adu(*r) for r in kept)] if kept else []
        mbap = await serve_one(context(), mbap_chunks, lane=False, **case.options)
        as_rtu = await serve_one(
            context(), [rtu(u, p) for _, u, p in kept], lane=False, framer="rtu", **case.options
        )
        return lane, ref, compat, mbap, as_rtu

    with server_logs_off():
        lane, ref, compat, mbap, as_rtu = trio.run(main)
    assert_equivalent(lane, ref)
    assert_equivalent(compat, ref)
    # The same answers, framed as RTU; the same counters, diagnostics and datastore.
    assert as_rtu.replies == b"".join(rtu(u, p) for _, u, p in replies_of(mbap.replies))
    assert_equivalent(dataclasses.replace(as_rtu, replies=mbap.replies), mbap)
    assert as_rtu.server.statistics.requests == len(kept)
    event(f"lane answered {min(lane.lane_answered, 5)}{'+' if lane.lane_answered > 5 else ''}")
    event(f"replies: {min(lane.server.statistics.responses, 5)}")
    event(f"RTU requests: {min(len(kept), 5)}{'+' if len(kept) > 5 else ''}")


# -- at the edges -------------------------------------------------------------------------------

EDGES = Layout(single=False, fallback=True, misfits=False, plain_list=False, sparse_mutable=False)


def _rw(read_address: int, read_count: int, write_address: int, count: int, **kw: int) -> bytes:
    """0x17 with ``count`` values; ``kw`` may set write_count and byte_count on their own."""
    write_count = kw.get("write_count", count)
    byte_count = kw.get("byte_count", 2 * count)
    return struct.pack(
        f">BHHHHB{count}H", 0x17, read_address, read_count, write_address, write_count,
        byte_count, *range(count),
    )  # fmt: skip


def _wr(address: int, count: int, **kw: int) -> bytes:
    """0x10 with ``count`` values; ``kw`` may set quantity and byte_count on their own."""
    quantity = kw.get("quantity", count)
    byte_count = kw.get("byte_count", 2 * count)
    return struct.pack(f">BHHB{count}H", 0x10, address, quantity, byte_count, *range(count))


def _req(fc: int, address: int, count: int) -> bytes:
    return struct.pack(">BHH", fc, address, count)


# (unit, request PDU, whether the lane must take it). In EDGES, unit 1 serves protocol
# addresses 0..28 of hr/ir (not zero_mode), unit 2 serves hr 100..229, co 100..2109 and di
# 100..139 (zero_mode), unit 0 (the fallback) 0xFFEF..0xFFFF with values past 0xFFFF, unit 3 has
# a sparse hr, unit 4 is a device-context subclass and unit 5 reads FC 3 from another block.
EDGE_CASES: list[tuple[str, int, bytes, bool]] = [
    ("read max registers", 2, _req(3, 100, 125), True),
    ("read registers up to the block end", 2, _req(3, 105, 125), True),
    ("read the last input register", 1, _req(4, 28, 1), True),
    ("read the first register, not zero_mode", 1, _req(3, 0, 1), True),
    ("read protocol address 0xFFFF", 0, _req(3, 0xFFFF, 1), True),
    ("read via the unit-0 fallback", 9, _req(3, 0xFFF0, 2), True),
    ("read max coils", 2, _req(1, 100, 2000), True),
    ("read the last discrete input", 2, _req(2, 139, 1), True),
    ("write the last register", 2, write_register(229, 0xFFFF), True),
    ("write max registers up to the end", 2, _wr(107, 123), True),
    ("read/write max, both up to the end", 2, _rw(105, 125, 109, 121), True),
    ("read registers, count 0", 2, _req(3, 100, 0), False),
    ("read registers, count 126", 2, _req(3, 100, 126), False),
    ("read registers before the block", 2, _req(3, 99, 1), False),
    ("read registers one past the end", 2, _req(3, 106, 125), False),
    ("read registers past 0xFFFF", 0, _req(3, 0xFFFF, 2), False),
    ("read registers past the end, not zero_mode", 1, _req(3, 28, 2), False),
    ("read registers, a byte too many", 2, _req(3, 100, 1) + b"\x00", False),
    ("read registers, a byte short", 2, _req(3, 100, 1)[:-1], False),
    ("read coils, count 0", 2, _req(1, 100, 0), False),
    ("read coils, count 2001", 2, _req(1, 100, 2001), False),
    ("read coils before the block", 2, _req(1, 99, 1), False),
    ("read discrete inputs past the end", 2, _req(2, 139, 2), False),
    ("read coils past 0xFFFF", 0, _req(1, 0xFFFF, 2), False),
    ("write a register past the end", 2, write_register(230, 1), False),
    ("write a register before the block", 2, write_register(99, 1), False),
    ("write a register, a byte too many", 2, write_register(100, 1) + b"\x00", False),
    ("write registers, count 0", 2, _wr(100, 0), False),
    ("write registers, byte count too big", 2, _wr(100, 2, byte_count=6), False),
    ("write registers, byte count too small", 2, _wr(100, 2, byte_count=2), False),
    ("write registers, quantity 2 with 3 values", 2, _wr(100, 3, quantity=2, byte_count=4), False),
    ("write registers, a byte too many", 2, _wr(100, 2) + b"\x00", False),
    ("write registers, quantity 124", 2, _wr(100, 123, quantity=124, byte_count=246), False),
    ("write registers one past the end", 2, _wr(229, 2), False),
    ("write registers past 0xFFFF", 0, _wr(0xFFFF, 2), False),
    ("read/write, read count 0", 2, _rw(100, 0, 100, 1), False),
    ("read/write, read count 126", 2, _rw(100, 126, 100, 1), False),
    ("read/write, write count 0", 2, _rw(100, 1, 100, 0), False),
    ("read/write, byte count wrong", 2, _rw(100, 1, 100, 2, byte_count=2), False),
    ("read/write, a byte too many", 2, _rw(100, 1, 100, 1) + b"\x00", False),
    ("read/write, write past the end", 2, _rw(100, 1, 229, 2), False),
    ("read/write, read past the end", 2, _rw(229, 2, 100, 1), False),
    ("read/write, read before the block", 2, _rw(99, 1, 100, 1), False),
    ("read/write, write before the block", 2, _rw(100, 1, 99, 1), False),
    ("read/write, read past 0xFFFF", 0, _rw(0xFFFF, 2, 0xFFF0, 1), False),
    ("read/write, its read block is not its write block", 5, _rw(0, 1, 0, 1), False),
    ("a sparse block", 3, _req(3, 0, 1), False),
    ("a device-context subclass", 4, _req(3, 0, 1), False),
    ("a device-context subclass refusing", 4, _req(3, 16, 1), False),
    ("write a coil", 1, struct.pack(">BHH", 5, 0, 0xFF00), False),
    ("mask write", 2, struct.pack(">BHHH", 0x16, 100, 0xFF00, 0x0012), False),
    ("function code 0x10, nothing after it", 2, b"\x10\x00\x64\x00\x01", False),
]


@pytest.mark.parametrize(("unit", "pdu", "lane_takes"), [case[1:] for case in EDGE_CASES],
                         ids=[case[0] for case in EDGE_CASES])  # fmt: skip
@pytest.mark.parametrize("broadcast", [False, True], ids=["", "broadcast"])
async def test_requests_at_the_edges(
    unit: int, pdu: bytes, lane_takes: bool, broadcast: bool
) -> None:
    # The edge request, then a request the lane always takes: the lane goes on after it.
    follow_up = adu(8, 2, read_write(100, 3, 101, [7]))
    lane, _ = await serve_both(
        lambda: build_context(EDGES), [adu(7, unit, pdu) + follow_up], broadcast=broadcast
    )
    assert (7 in lane.lane_tids) == (lane_takes and not (broadcast and unit == 0))
    assert 8 in lane.lane_tids
    assert lane.server.statistics.requests == 2


# -- the lane takes part ----------------------------------------------------------------------


def numbered() -> ModbusServerContext:
    """Unit 1 (zero_mode): hr i → 1000 + i, ir i → 2000 + i, coils and inputs by pattern."""
    device = ModbusDeviceContext(
        co=seq(0, [i % 3 == 0 for i in range(100)]),
        di=seq(0, [i % 5 == 0 for i in range(100)]),
        hr=seq(0, [1000 + i for i in range(100)]),
        ir=seq(0, [2000 + i for i in range(100)]),
        zero_mode=True,
    )
    return ModbusServerContext(devices={1: device})


def holding(served: Served, unit: int = 1) -> list[int]:
    return list(served.context[unit].store["h"].values)


async def test_the_lane_answers_the_common_requests_and_they_see_each_others_writes() -> None:
    requests = [
        adu(1, 1, read_holding(0, 3)),
        adu(2, 1, write_registers(1, [7, 8])),
        adu(3, 1, read_holding(0, 4)),
        adu(4, 1, write_register(3, 9)),
        adu(5, 1, struct.pack(">BHH", 4, 98, 2)),
        adu(6, 1, read_coils(0, 10)),
        adu(7, 1, struct.pack(">BHH", 2, 3, 7)),
        adu(8, 1, read_write(0, 6, 4, [11, 12])),
        adu(9, 1, read_holding(0, 6)),
        adu(10, 1, read_holding(95, 5)),
    ]
    lane, _ = await serve_both(numbered, [b"".join(requests)])
    assert lane.lane_tids == list(range(1, len(requests) + 1))
    assert replies_of(lane.replies) == [
        (1, 1, registers_reply([1000, 1001, 1002])),
        (2, 1, struct.pack(">BHH", 0x10, 1, 2)),
        (3, 1, registers_reply([1000, 7, 8, 1003])),
        (4, 1, write_register(3, 9)),
        (5, 1, registers_reply([2098, 2099], fc=4)),
        (6, 1, b"\x01\x02\x49\x02"),  # coils 0, 3, 6, 9
        (7, 1, b"\x02\x01\x04"),  # of inputs 3..9, only 5
        (8, 1, registers_reply([1000, 7, 8, 9, 11, 12], fc=0x17)),
        (9, 1, registers_reply([1000, 7, 8, 9, 11, 12])),
        (10, 1, registers_reply([1095, 1096, 1097, 1098, 1099])),
    ]
    assert bits_of(replies_of(lane.replies)[5][2], 10) == [i % 3 == 0 for i in range(10)]
    assert holding(lane)[:7] == [1000, 7, 8, 9, 11, 12, 1006]
    stats = lane.server.statistics
    assert stats.requests == stats.responses == len(requests)
    diag = lane.server.diagnostics
    assert diag.bus_message_count == diag.server_message_count == diag.event_count == 10
    assert diag.events() == bytes((SendEvent.SEND, ReceiveEvent.RECEIVE)) * 10


@pytest.mark.parametrize(
    ("read_address", "read_count", "write_address", "written", "expected"),
    [
        # The write lands first, then the read sees it.
        (2, 5, 4, [1, 2, 3], [1002, 1003, 1, 2, 3]),
        (2, 3, 0, [9, 9, 9], [9, 1003, 1004]),
        (3, 2, 3, [5, 6], [5, 6]),
        (0, 1, 99, [7], [1000]),
    ],
)
async def test_read_write_registers_writes_before_it_reads(
    read_address: int, read_count: int, write_address: int, written: list[int], expected: list[int]
) -> None:
    request = adu(1, 1, read_write(read_address, read_count, write_address, written))
    lane, _ = await serve_both(numbered, [request])
    assert lane.lane_tids == [1]
    [(_, _, pdu)] = replies_of(lane.replies)
    assert registers_of(pdu) == expected
    after = [1000 + i for i in range(100)]
    after[write_address : write_address + len(written)] = written
    assert holding(lane) == after


async def test_a_value_that_does_not_fit_sends_the_lane_aside_until_it_is_overwritten() -> None:
    def context() -> ModbusServerContext:
        ctx = numbered()
        ctx[1].store["h"].values[1] = 70000
        return ctx

    requests = [
        adu(1, 1, read_holding(0, 3)),  # packs 70000: SERVER DEVICE FAILURE
        adu(2, 1, read_holding(2, 2)),  # fine, but the block has no image: general pipeline
        adu(3, 1, write_register(1, 5)),  # the lane needs no image to write
        adu(4, 1, read_holding(0, 3)),  # the image is back
    ]
    lane, _ = await serve_both(context, [b"".join(requests)])
    assert replies_of(lane.replies) == [
        (1, 1, b"\x83\x04"),
        (2, 1, registers_reply([1002, 1003])),
        (3, 1, write_register(1, 5)),
        (4, 1, registers_reply([1000, 5, 1002])),
    ]
    assert 1 not in lane.lane_tids  # never an exception reply
    assert 4 in lane.lane_tids  # the image is back: the lane serves the block again


async def test_a_plain_list_assigned_to_block_values_is_served_by_the_general_pipeline() -> None:
    def context() -> ModbusServerContext:
        ctx = numbered()
        ctx[1].store["h"].values = [1000 + i for i in range(100)]  # not a ValueList
        return ctx

    requests = [
        adu(1, 1, read_holding(0, 2)),
        adu(2, 1, write_register(0, 1)),
        adu(3, 1, write_registers(1, [2, 3])),
        adu(4, 1, read_write(0, 4, 3, [4])),
        adu(5, 1, read_holding(0, 5)),
        adu(6, 1, read_coils(0, 4)),  # the coils are still a ValueList: the lane's
    ]
    lane, _ = await serve_both(context, [b"".join(requests)])
    assert replies_of(lane.replies) == [
        (1, 1, registers_reply([1000, 1001])),
        (2, 1, write_register(0, 1)),
        (3, 1, struct.pack(">BHH", 0x10, 1, 2)),
        (4, 1, registers_reply([1, 2, 3, 4], fc=0x17)),
        (5, 1, registers_reply([1, 2, 3, 4, 1004])),
        (6, 1, b"\x01\x01\x09"),
    ]
    assert lane.lane_tids == [6]
    values = lane.context[1].store["h"].values
    assert type(values) is list
    assert values[:5] == [1, 2, 3, 4, 1004]


# -- the lane steps aside ---------------------------------------------------------------------


@pytest.mark.parametrize("one_read", [True, False], ids=["one read", "a read per frame"])
async def test_listen_only_mode_silences_the_lane_too(one_read: bool) -> None:
    requests = [
        adu(1, 1, read_holding(0, 1)),  # answered
        adu(2, 1, diagnostic(0x04)),  # listen-only: no reply from here on
        adu(3, 1, read_holding(0, 1)),
        adu(4, 1, write_register(0, 5)),  # not executed either
        adu(5, 1, write_registers(0, [5, 6])),
        adu(6, 1, read_write(0, 1, 0, [5])),
        adu(7, 1, read_coils(0, 1)),
        adu(8, 1, diagnostic(0x01)),  # restart: leaves the mode, unanswered
        adu(9, 1, read_holding(0, 2)),  # answered again
    ]
    chunks = [b"".join(requests)] if one_read else requests
    lane, _ = await serve_both(numbered, chunks, network_listen_only=True)
    assert replies_of(lane.replies) == [
        (1, 1, registers_reply([1000])),
        (9, 1, registers_reply([1000, 1001])),
    ]
    assert lane.lane_tids == [1, 9]
    assert holding(lane)[:2] == [1000, 1001]
    stats = lane.server.statistics
    assert (stats.requests, stats.responses) == (9, 2)
    diag = lane.server.diagnostics
    assert not diag.listen_only
    # 08/01 zeroed the counters: only the last read counts.
    assert (diag.bus_message_count, diag.server_message_count, diag.event_count) == (1, 1, 1)


class FortyTwo(ModbusPDU):
    """A user's function 3: every read of holding registers answers one register, 42."""

    function_code = 3

    def decode(self, data: bytes) -> None:
        self.data = data

    def encode(self) -> bytes:
        return b"\x02\x00\x2a"

    def execute(self, context: object) -> FortyTwo:
        return self


def _register_forty_two(server: BaseServer) -> None:
    assert isinstance(server.service, DatastoreService)
    server.service.register(FortyTwo)


@pytest.mark.parametrize("when", ["at construction", "on the service later"])
async def test_a_custom_function_3_is_not_taken_by_the_lane(when: str) -> None:
    requests = [
        adu(1, 1, read_holding(0, 1)),
        adu(2, 1, write_register(0, 5)),  # still the lane's
        adu(3, 1, read_holding(0, 2)),
        adu(4, 1, struct.pack(">BHH", 4, 0, 1)),  # FC 4 too
    ]
    if when == "at construction":
        options: dict[str, Any] = {"custom_functions": [FortyTwo]}
    else:
        options = {"prepare": _register_forty_two}
    lane, _ = await serve_both(numbered, [b"".join(requests)], **options)
    assert replies_of(lane.replies) == [
        (1, 1, b"\x03\x02\x00\x2a"),
        (2, 1, write_register(0, 5)),
        (3, 1, b"\x03\x02\x00\x2a"),
        (4, 1, registers_reply([2000], fc=4)),
    ]
    assert lane.lane_tids == [2, 4]


def test_a_server_given_a_plain_datastore_service_has_a_lane() -> None:
    server = serve_tcp(service=DatastoreService(numbered()))
    assert server.pipeline.lane(server.pipeline.new_framer()) is not None


async def test_custom_functions_of_the_server_alone_are_not_taken_by_the_lane() -> None:
    # The server decodes 3 as FortyTwo; its service knows nothing of it.
    service = DatastoreService(numbered())
    server = serve_tcp(service=service, custom_functions=[FortyTwo])
    lane = server.pipeline.lane(server.pipeline.new_framer())
    assert lane is not None
    out: list[bytes] = []
    read = adu(1, 1, read_holding(0, 1))
    assert lane.run(read, 0, out, 32) == (0, 0)
    write = adu(2, 1, write_register(0, 5))
    assert lane.run(write, 0, out, 32) == (len(write), 1)
    assert b"".join(out) == write


async def test_a_tcp_broadcast_is_left_to_the_general_pipeline() -> None:
    def two_units() -> ModbusServerContext:
        ctx = numbered()
        ctx[2] = ModbusDeviceContext(hr=seq(0, [0] * 10), zero_mode=True)
        return ctx

    requests = [
        adu(1, 0, write_register(1, 77)),  # broadcast: every device, no reply
        adu(2, 0, read_holding(0, 1)),  # not a broadcast function: executed on none, no reply
        adu(3, 1, read_holding(0, 2)),
        adu(4, 2, read_holding(0, 2)),
    ]
    lane, _ = await serve_both(two_units, [b"".join(requests)], broadcast=True)
    assert replies_of(lane.replies) == [
        (3, 1, registers_reply([1000, 77])),
        (4, 2, registers_reply([0, 77])),
    ]
    assert lane.lane_tids == [3, 4]
    # Without broadcast, unit 0 is a unit like the others (none here: exception 0B).
    lane, _ = await serve_both(two_units, [b"".join(requests)])
    assert [pdu for _, _, pdu in replies_of(lane.replies)][:2] == [b"\x86\x0b", b"\x83\x0b"]


async def test_a_server_context_subclass_is_left_to_the_general_pipeline() -> None:
    class Servers(ModbusServerContext):
        pass

    def context() -> ModbusServerContext:
        return Servers(devices={1: numbered()[1]})

    lane, _ = await serve_both(context, [adu(1, 1, read_holding(0, 2))])
    assert replies_of(lane.replies) == [(1, 1, registers_reply([1000, 1001]))]
    assert lane.lane_tids == []


class _Layer(ServiceLayer):
    """A layer over a DatastoreService; ``sees_requests`` as given."""

    def __init__(self, inner: DatastoreService, sees_requests: bool) -> None:
        super().__init__(inner)
        self.sees_requests = sees_requests  # type: ignore[misc]


def test_servers_that_must_see_each_request_have_no_lane() -> None:
    class OwnService(DatastoreService):
        pass

    blind = serve_tcp(service=_Layer(DatastoreService(numbered()), sees_requests=False))
    assert blind.pipeline.lane(blind.pipeline.new_framer()) is not None

    with_lane = serve_tcp(numbered())
    assert with_lane.pipeline.lane(with_lane.pipeline.new_framer()) is not None
    for server in (
        serve_tcp(numbered(), trace_pdu=reference_trace),
        serve_tcp(numbered(), framer="rtu"),
        serve_tcp(service=OwnService(numbered())),
        serve_tcp(service=_Layer(DatastoreService(numbered()), sees_requests=True)),
        serve_tcp(service=DatastoreService(numbered(), serves_unit=lambda unit: unit == 1)),
    ):
        assert server.pipeline.lane(server.pipeline.new_framer()) is None


# -- reads, splits and back-pressure ----------------------------------------------------------


async def test_max_in_flight_bounds_the_replies_the_lane_holds() -> None:
    requests = [adu(i, 1, read_holding(i, 1)) for i in range(5)]
    lane, ref = await serve_both(numbered, [b"".join(requests)], max_in_flight=2)
    assert replies_of(lane.replies) == [(i, 1, registers_reply([1000 + i])) for i in range(5)]
    assert lane.lane_tids == [0, 1, 2, 3, 4]
    assert lane.sends == ref.sends == [2, 2, 1]  # never more than two replies held back


async def test_max_in_flight_counts_lane_and_general_replies_alike() -> None:
    requests = [
        adu(1, 1, read_holding(0, 1)),
        adu(2, 1, diagnostic(0x00, 0x1234)),  # general pipeline (echo)
        adu(3, 1, read_holding(1, 1)),
        adu(4, 9, read_holding(0, 1)),  # no such unit: general pipeline (0B)
        adu(5, 1, read_holding(2, 1)),
    ]
    lane, ref = await serve_both(numbered, [b"".join(requests)], max_in_flight=2)
    assert [tid for tid, _, _ in replies_of(lane.replies)] == [1, 2, 3, 4, 5]
    assert lane.lane_tids == [1, 3, 5]
    assert lane.sends == ref.sends == [2, 2, 1]


async def test_a_stream_sent_byte_by_byte_is_answered_by_the_lane() -> None:
    requests = [
        adu(1, 1, read_holding(0, 2)),
        adu(2, 1, write_registers(0, [5, 6, 7])),
        adu(3, 1, read_write(1, 3, 3, [8])),
    ]
    data = b"".join(requests)
    lane, _ = await serve_both(numbered, [data[i : i + 1] for i in range(len(data))])
    assert replies_of(lane.replies) == [
        (1, 1, registers_reply([1000, 1001])),
        (2, 1, struct.pack(">BHH", 0x10, 0, 3)),
        (3, 1, registers_reply([6, 7, 8], fc=0x17)),
    ]
    assert lane.lane_tids == [1, 2, 3]  # each completed from the framer's pending bytes


async def test_partial_frames_are_completed_by_the_next_read() -> None:
    f1 = adu(1, 1, read_holding(0, 1))
    f2 = adu(2, 1, write_register(0, 9))
    f3 = adu(3, 1, diagnostic(0x00, 0xBEEF))  # general pipeline
    f4 = adu(4, 1, read_holding(0, 2))
    f5 = adu(5, 1, write_registers(1, [1, 2]))
    chunks = [
        f1 + f2[:5],  # a partial header
        f2[5:] + f3[:4],  # a general frame split
        f3[4:] + f4[:9],  # a lane frame split in its PDU
        f4[9:] + f5[:7],  # a header alone
        f5[7:],
    ]
    lane, _ = await serve_both(numbered, chunks)
    assert replies_of(lane.replies) == [
        (1, 1, registers_reply([1000])),
        (2, 1, write_register(0, 9)),
        (3, 1, diagnostic(0x00, 0xBEEF)),
        (4, 1, registers_reply([9, 1001])),
        (5, 1, struct.pack(">BHH", 0x10, 1, 2)),
    ]
    assert lane.lane_tids == [1, 2, 4, 5]


async def test_a_bad_protocol_id_after_lane_frames_closes_after_answering_them() -> None:
    good = [adu(i, 1, read_holding(i, 1)) for i in range(3)]
    bad = adu(9, 1, read_holding(0, 1), protocol=1)
    lane, _ = await serve_both(numbered, [b"".join([*good, bad, *good])])
    assert replies_of(lane.replies) == [(i, 1, registers_reply([1000 + i])) for i in range(3)]
    assert lane.lane_tids == [0, 1, 2]
    assert lane.server.statistics.protocol_errors == 1


# -- over a socket ------------------------------------------------------------------------------


async def serve_over_socket(
    context: ModbusServerContext, data: bytes, *, lane: bool, sndbuf: int
) -> Served:
    """Serve ``data`` over a local socket pair, with the engine's own socket stream.

    A ``SocketStream`` makes the engine send with ``send_nowait`` (no scheduler trip); a small
    send buffer on the server's side, with a client that reads only once it has sent
    everything, makes those sends partial.
    """
    server = TcpServer(
        context, idle_timeout=None, trace_pdu=None if lane else reference_trace, max_in_flight=64
    )
    client_sock, server_sock = stdlib_socket.socketpair()
    server_sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_SNDBUF, sndbuf)
    client = trio.SocketStream(trio.socket.from_stdlib_socket(client_sock))
    received = bytearray()
    with lane_spy() as lane_tids, trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, SocketStream(server_sock))
            await client.send_all(data)
            await client.send_eof()
            while chunk := await client.receive_some(65536):
                received += chunk
        await client.aclose()
    return Served(server, context, bytes(received), lane_tids, [])


@pytest.mark.parametrize("sndbuf", [1024, 1 << 20], ids=["partial sends", "roomy"])
@pytest.mark.parametrize("general", [False, True], ids=["lane only", "with general frames"])
async def test_the_lane_over_a_socket_sends_every_answer_whole(sndbuf: int, general: bool) -> None:
    requests = []
    for i in range(40):
        requests.append(adu(4 * i, 1, read_holding(0, 100)))  # 209 bytes a reply
        requests.append(adu(4 * i + 1, 1, read_holding(0, 100)))
        requests.append(adu(4 * i + 2, 1, write_registers(i, [i, 0xFFFF - i])))
        if general:  # the engine then sends through _send, not inline
            requests.append(adu(4 * i + 3, 1, diagnostic(0x00, i)))
    data = b"".join(requests)
    # 64 answers a send: about 7 KB, more than a 1 KB send buffer (4.5 KB on Linux) takes.
    lane = await serve_over_socket(numbered(), data, lane=True, sndbuf=sndbuf)
    ref = await serve_over_socket(numbered(), data, lane=False, sndbuf=sndbuf)
    assert_equivalent(lane, ref)
    replies = replies_of(lane.replies)
    assert [tid for tid, _, _ in replies] == [r[0] for r in split_frames(data)[0]]
    assert len(lane.lane_tids) == 120
    # The last reads came before the last write.
    last_read = replies[-3 if general else -2][2]
    assert registers_of(last_read)[:41] == [*range(39), 0xFFFF - 38, 1040]


# -- accounting helpers -------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 2, EVENT_LOG_SIZE // 2 - 1, EVENT_LOG_SIZE // 2, 33, 100])
def test_count_answered_accounts_as_one_request_at_a_time_would(count: int) -> None:
    batch, one_by_one = DiagnosticState(), DiagnosticState()
    for state in (batch, one_by_one):
        state.add_event(0x01)
        state.server_message_count = state.event_count = 0xFFFE  # no wrap, like += 1
    batch.count_answered(count)
    for _ in range(count):
        one_by_one.server_message_count += 1
        one_by_one.add_receive_event()
        one_by_one.event_count += 1
        one_by_one.add_send_event()
    assert diagnostics_of(batch) == diagnostics_of(one_by_one)
    assert len(batch.events()) == min(count * 2 + 1, EVENT_LOG_SIZE)


def test_take_pending_hands_back_the_partial_frame_and_empties_the_buffer() -> None:
    framer = MBAPFramer()
    frame = adu(1, 1, read_holding(0, 1))
    assert framer.feed(frame[:5]) == []
    assert framer.pending == 5
    assert framer.take_pending(frame[5:]) == frame
    assert framer.pending == 0
    assert framer.take_pending(b"") == b""
    [decoded] = framer.feed(frame)
    assert decoded.pdu == read_holding(0, 1)
    with pytest.raises(FramingError):
        framer.feed(adu(1, 1, read_holding(0, 1), protocol=5))
    with pytest.raises(FramingError):
        framer.take_pending(b"more")


# -- regressions: bugs found while reviewing the lane ----------------------------------


@pytest.mark.parametrize("length", [0, 1, 2, 3, 4, 5])
async def test_a_short_fc16_frame_that_ends_a_read_does_not_crash_the_server(length: int) -> None:
    frame = struct.pack(">HHHB", 1, 0, length, 1) + b"\x10" + b"\x00" * max(0, length - 2)
    lane, _ = await serve_both(numbered, [frame])
    # The reference answers ILLEGAL DATA VALUE, or closes on a length field below 2.
    assert lane.replies == (b"" if length < 2 else adu(1, 1, b"\x90\x03"))


def _extended_by_a_failing_source() -> ModbusServerContext:
    ctx = numbered()
    values = ctx[1].store["h"].values
    assert values.image() is not None

    def source() -> Iterator[int]:
        yield 100
        yield 101
        raise RuntimeError("the application's source failed")

    with contextlib.suppress(RuntimeError):
        values.extend(source())  # list semantics: 100 and 101 are appended
    return ctx


async def test_registers_appended_by_a_failed_extend_are_read_correctly() -> None:
    lane, _ = await serve_both(_extended_by_a_failing_source, [adu(1, 1, read_holding(99, 3))])
    assert lane.replies == adu(1, 1, registers_reply([1099, 100, 101]))


async def test_a_failing_lane_closes_its_connection_only(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: MBAPLane, buf: bytes, pos: int, out: list[bytes], room: int) -> Any:
        raise RuntimeError("a defect in the lane")

    server = serve_tcp(numbered(), idle_timeout=None)
    request = adu(1, 1, read_holding(0, 2))
    with monkeypatch.context() as patch:
        patch.setattr(MBAPLane, "run", broken)
        replies = await exchange(server, [request], [])
    assert replies == b""  # closed, not crashed
    assert "the fast lane failed" in caplog.text
    # The server itself carries on: the next connection is served as usual.
    assert replies_of(await exchange(server, [request], [])) == [
        (1, 1, registers_reply([1000, 1001]))
    ]
