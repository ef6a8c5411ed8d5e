"""A tiny Modbus client side for the server tests: MBAP and RTU bytes, parsing.

The request and frame bytes come from :mod:`trio_modbus.testing.raw`, whose builders are
checked against the specification's bytes; like this module, it uses neither the package's
framers nor its codec, so the tests check the server against the wire format itself.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tty
from collections.abc import Callable, Sequence

import trio

from trio_modbus.datastore import ModbusDeviceContext, ModbusServerContext
from trio_modbus.pdu.codec import DecodeResult
from trio_modbus.service import DatastoreService, RequestContext, Response
from trio_modbus.testing import raw

MBAP = struct.Struct(">HHHB")


# -- request PDUs (raw's builders, under the short names these tests use) --------------------

read_holding = raw.read_holding_registers
read_coils = raw.read_coils
write_register = raw.write_register
write_registers = raw.write_registers
write_coils = raw.write_coils
mask_write = raw.mask_write_register
read_write = raw.read_write_registers
diagnostic = raw.diagnostics


# -- reply PDUs -----------------------------------------------------------------------------


def registers_reply(values: Sequence[int], fc: int = 0x03) -> bytes:
    n = len(values)
    return struct.pack(f">BB{n}H", fc, 2 * n, *values)


def registers_of(pdu: bytes) -> list[int]:
    """The values of a 03/04/17 reply."""
    assert pdu[0] in (0x03, 0x04, 0x17), pdu.hex(" ")
    assert pdu[1] == len(pdu) - 2
    return list(struct.unpack(f">{pdu[1] // 2}H", pdu[2:]))


def bits_of(pdu: bytes, count: int) -> list[bool]:
    """The values of a 01/02 reply."""
    assert pdu[0] in (0x01, 0x02), pdu.hex(" ")
    assert pdu[1] == (count + 7) // 8 == len(pdu) - 2
    return [bool(pdu[2 + i // 8] >> (i % 8) & 1) for i in range(count)]


def diagnostic_value(pdu: bytes, sub_function: int) -> int:
    fc, sub, value = struct.unpack(">BHH", pdu)
    assert (fc, sub) == (0x08, sub_function)
    return int(value)


# -- MBAP -----------------------------------------------------------------------------------


def adu(tid: int, unit: int, pdu: bytes, *, protocol: int = 0, length: int | None = None) -> bytes:
    """An MBAP frame; ``protocol`` and ``length`` can be made wrong on purpose."""
    return raw.mbap(pdu, unit=unit, tid=tid, protocol=protocol, length=length)


def split_frames(buf: bytes) -> tuple[list[tuple[int, int, bytes]], bytes]:
    """Cut complete MBAP replies off ``buf``: ([(tid, unit, pdu)], rest)."""
    frames = []
    while len(buf) >= 7:
        tid, protocol, length, unit = MBAP.unpack_from(buf)
        assert protocol == 0, buf.hex(" ")
        if len(buf) < 6 + length:
            break
        frames.append((tid, unit, buf[7 : 6 + length]))
        buf = buf[6 + length :]
    return frames, buf


class MbapClient:
    """A client side over any trio stream: send raw bytes, read whole reply frames.

    The tuple-shaped face these tests use, over :class:`trio_modbus.testing.raw.RawClient`.
    """

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.raw = raw.RawClient(stream)

    async def send(self, data: bytes) -> None:
        """Send ``data``; trio's errors when the server has gone (BrokenResourceError)."""
        await self.stream.send_all(data)

    async def read_frame(self) -> tuple[int, int, bytes]:
        """The next reply; EOFError if the server closes first."""
        try:
            reply = await self.raw.receive_frame()
        except raw.ConnectionClosed as exc:
            raise EOFError(str(exc)) from exc
        assert reply is not None and reply.tid is not None
        return reply.tid, reply.unit, reply.pdu

    async def read_frames(self, n: int) -> list[tuple[int, int, bytes]]:
        return [await self.read_frame() for _ in range(n)]

    async def request(self, tid: int, unit: int, pdu: bytes) -> bytes:
        """Send one request and return the reply PDU (checking its tid and unit)."""
        reply = await self.raw.request(pdu, unit=unit, tid=tid)
        assert (reply.tid, reply.unit) == (tid, unit)
        return reply.pdu

    async def expect_closed(self) -> bytes:
        """Read until the server closes the connection; return what came before the end."""
        data = b""
        while True:
            try:
                data += await self.raw.receive_bytes()
            except (raw.ConnectionClosed, trio.ClosedResourceError):
                return data

    async def aclose(self) -> None:
        await self.raw.aclose()


async def connect(port: int) -> MbapClient:
    return MbapClient(await trio.open_tcp_stream("127.0.0.1", port))


# -- RTU ------------------------------------------------------------------------------------


def rtu(unit: int, pdu: bytes) -> bytes:
    return raw.rtu(pdu, unit=unit)


class PtyEnd:
    """The client end of a pty pair: raw bytes in and out of a non-blocking fd."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            await trio.lowlevel.wait_writable(self.fd)
            with contextlib.suppress(BlockingIOError):
                view = view[os.write(self.fd, view) :]

    async def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes (bound the wait with a cancel scope)."""
        data = b""
        while len(data) < n:
            await trio.lowlevel.wait_readable(self.fd)
            with contextlib.suppress(BlockingIOError):
                data += os.read(self.fd, n - len(data))
        return data

    async def read_nothing_for(self, seconds: float) -> bytes:
        """Whatever arrives within ``seconds`` (real time); b"" when the line stays silent."""
        data = b""
        with trio.move_on_after(seconds):
            while True:
                await trio.lowlevel.wait_readable(self.fd)
                with contextlib.suppress(BlockingIOError):
                    data += os.read(self.fd, 4096)
        return data

    def close(self) -> None:
        os.close(self.fd)


# -- datastores -----------------------------------------------------------------------------


def make_context(*units: int) -> ModbusServerContext:
    """Devices at ``units`` (1 by default), zero-based addresses, 65536 zeros per table."""
    return ModbusServerContext(
        devices={unit: ModbusDeviceContext(zero_mode=True) for unit in units or (1,)},
        single=False,
    )


def holding_values(context: ModbusServerContext, unit: int, address: int, count: int) -> list[int]:
    values = context[unit].getValues(3, address, count)
    assert isinstance(values, list)
    return values


# -- leak checks ----------------------------------------------------------------------------


def package_tasks() -> list[str]:
    """Names of the live tasks that run trio_modbus code, anywhere in the task tree."""
    found = []
    root = trio.lowlevel.current_root_task()
    assert root is not None
    stack = [root]
    while stack:
        task = stack.pop()
        if "trio_modbus" in task.name:
            found.append(task.name)
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return found


def open_fds() -> set[str]:
    """What this process's file descriptors point at (sockets, ptys, files)."""
    targets = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the descriptor listdir itself used is gone
            targets.add(f"{fd}:{os.readlink(f'/proc/self/fd/{fd}')}")
    return targets


# -- services and waiting -------------------------------------------------------------------


class GatedService:
    """The datastore service, but requests for ``gated_units`` wait until ``gate`` is set."""

    def __init__(self, context: ModbusServerContext, gated_units: Sequence[int] = ()) -> None:
        self.inner = DatastoreService(context)
        self.gate = trio.Event()
        self.gated_units = set(gated_units)
        self.waiting = 0
        self.calls = 0

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        self.calls += 1
        if ctx.unit_id in self.gated_units:
            self.waiting += 1
            try:
                await self.gate.wait()
            finally:
                self.waiting -= 1
        return await self.inner(request, ctx)


async def wait_until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    """Poll ``predicate()`` until it holds (fails after ``timeout`` seconds)."""
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.002)


class SlowService:
    """The datastore service, taking ``delay`` seconds per request."""

    def __init__(self, context: ModbusServerContext, delay: float) -> None:
        self.inner = DatastoreService(context)
        self.delay = delay

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        await trio.sleep(self.delay)
        return await self.inner(request, ctx)


class WatchedStream(trio.abc.Stream):
    """The server's side of a stream: counts the bytes the server reads and replies it sends."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.received = 0
        self.replies_sent = 0

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        frames, rest = split_frames(bytes(data))
        assert rest == b"", "the server sent a partial frame"
        self.replies_sent += len(frames)  # answered: handed to the transport
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.inner.receive_some(max_bytes)
        self.received += len(data)
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()
