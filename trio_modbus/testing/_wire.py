"""A fake device on the wire: its connections, and the byte-level faults of its replies."""

from __future__ import annotations

import socket
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

import trio

from trio_modbus.framing import ASCIIFramer, MBAPFramer, RTUFramer
from trio_modbus.server import Session

from . import faults as F
from ._recorder import RequestRecord

__all__ = [
    "BUILD",
    "Close",
    "Connection",
    "FaultyStream",
    "Outgoing",
    "Send",
    "current",
    "no_close",
    "send_replies",
    "split_frame",
]

BUILD: dict[str, Callable[[int, bytes, int], bytes]] = {
    # Each framer's build(unit, pdu, tid), made once: building a frame uses no framer state.
    "socket": MBAPFramer().build,
    "rtu": RTUFramer().build,
    "ascii": ASCIIFramer().build,
}


@dataclass
class Outgoing:
    """A reply on its way out: its record, the fault to apply, the frame expected."""

    record: RequestRecord
    rule: F.Rule | None
    frame: bytes


@dataclass
class Connection:
    """What the device knows of one connection (datagram, serial-port opening)."""

    number: int
    session: Session
    kind: str  # the framer: "socket", "rtu" or "ascii"
    transport: str
    outgoing: deque[Outgoing] = field(default_factory=deque)
    last_frame: bytes | None = None
    closed: bool = False


current: ContextVar[Connection] = ContextVar("trio_modbus_fake_device_connection")


def split_frame(kind: str, frame: bytes) -> tuple[int, bytes, int]:
    """(unit, pdu, transaction id) of a reply frame the device built."""
    if kind == "socket":
        return frame[6], frame[7:], int.from_bytes(frame[:2], "big")
    if kind == "rtu":
        return frame[0], frame[1:-2], 0
    body = bytes.fromhex(frame[1:-2].decode("ascii"))
    return body[0], body[1:-1], 0


class FaultyStream(trio.abc.Stream):
    """A connection's stream: applies byte-level faults to the replies as they leave."""

    def __init__(self, inner: trio.abc.Stream, conn: Connection) -> None:
        self.inner = inner
        self.conn = conn

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self.conn.closed:
            await trio.lowlevel.checkpoint()
            return b""
        return await self.inner.receive_some(max_bytes)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await send_replies(bytes(data), self.conn, self._send, self._close)

    async def _send(self, data: bytes) -> None:
        await self.inner.send_all(data)

    async def _close(self, reset: bool) -> None:
        self.conn.closed = True
        inner = self.inner
        if reset:
            sock = socket_of(inner)
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # Forcefully: a TLS stream's aclose would send close_notify first (a clean end).
            await trio.aclose_forcefully(inner)
        elif isinstance(inner, trio.abc.HalfCloseableStream):
            await inner.send_eof()
        else:
            await inner.aclose()


class HalfCloseableFaultyStream(FaultyStream, trio.abc.HalfCloseableStream):
    """A :class:`FaultyStream` over a half-closeable stream (TCP).

    ``send_eof`` passes on, so that a server stopping gracefully half-closes it as it does an
    unwrapped socket (and its client sees every answer, then the end).
    """

    async def send_eof(self) -> None:
        inner = self.inner
        assert isinstance(inner, trio.abc.HalfCloseableStream)
        await inner.send_eof()


def faulty_stream(inner: trio.abc.Stream, conn: Connection) -> FaultyStream:
    """The :class:`FaultyStream` for ``inner``: half-closeable when ``inner`` is."""
    if isinstance(inner, trio.abc.HalfCloseableStream):
        return HalfCloseableFaultyStream(inner, conn)
    return FaultyStream(inner, conn)


def socket_of(stream: trio.abc.Stream) -> trio.socket.SocketType | None:
    """The socket under a stream (through TLS), if there is one."""
    while True:
        sock = getattr(stream, "socket", None)
        if isinstance(sock, trio.socket.SocketType):
            return sock
        inner = getattr(stream, "transport_stream", None)
        if inner is None:
            return None
        stream = inner


Send = Callable[[bytes], Awaitable[None]]
Close = Callable[[bool], Awaitable[None]]


async def send_replies(data: bytes, conn: Connection, send: Send, close: Close) -> None:
    """Send one write of the server's: each reply the layer queued, with its fault.

    The queue holds the replies of this write, in order. Bytes that are not the next queued
    reply (a trace hook changed it on its way) go out as they are, and the replies among
    them are noted as sent without their fault: a fault never lands on another reply's bytes.
    """
    rest = data
    while rest and conn.outgoing and not conn.closed and rest.startswith(conn.outgoing[0].frame):
        item = conn.outgoing.popleft()
        rest = rest[len(item.frame) :]
        await deliver(item, item.frame, conn, send, close)
    if conn.closed:
        conn.outgoing.clear()  # what came after a close or reset is never sent
        return
    for item in conn.outgoing:
        if item.rule is not None:
            item.record.faults.append("(not applied: the reply changed on its way out)")
        item.record.delivered = True
    conn.outgoing.clear()
    if rest:
        await send(rest)


async def deliver(
    item: Outgoing, frame: bytes, conn: Connection, send: Send, close: Close
) -> None:
    """Send one reply's frame, with its byte-level fault applied; record what went out."""
    record = item.record
    rule = item.rule
    sent = b""

    async def put(data: bytes) -> None:
        nonlocal sent
        await send(data)
        sent += data

    action = rule.action if rule is not None else None
    kind = conn.kind
    stream_like = conn.transport in ("tcp", "tls", "memory")
    if action is None:
        await put(frame)
    elif isinstance(action, F.Close | F.Reset):
        if stream_like:
            if isinstance(action, F.Reset) and conn.transport == "memory":
                record.faults.append("(closed, not reset: no socket to reset)")
            await close(isinstance(action, F.Reset))
        else:
            record.faults.append("(no reply instead: this transport cannot close)")
    elif isinstance(action, F.Garbage):
        assert rule is not None
        if action.then_close and not stream_like:
            record.faults.append("(not closed: this transport cannot close)")
        await put(bytes(rule.rng.randrange(256) for _ in range(action.size)))
        if action.then_close and stream_like:
            await close(False)
    elif isinstance(action, F.StaleReply):
        if conn.last_frame is not None:
            await put(conn.last_frame)
    elif isinstance(action, F.Duplicate):
        await put(frame)
        await put(frame)
    elif isinstance(action, F.LocalEcho):
        await put(record.raw_in)
        await put(frame)
    elif isinstance(action, F.Split):
        size = max(1, -(-len(frame) // action.pieces))
        pieces = [frame[i : i + size] for i in range(0, len(frame), size)]
        for number, piece in enumerate(pieces):
            if number:
                await trio.sleep(action.gap)
            await put(piece)
    elif isinstance(action, F.Truncate):
        await put(frame[: action.keep if action.keep is not None else len(frame) // 2])
    else:
        altered = alter(action, frame, kind)
        if altered is None:  # e.g. no transaction id in an RTU frame
            record.faults.append(f"(not applied: no such field in a {kind} frame)")
            altered = frame
        await put(altered)
    conn.last_frame = frame
    if sent:
        record.sent_at = trio.current_time()
    record.raw_out = sent if sent else None
    # Delivered: this reply went out, whole or altered; not garbage or another reply instead.
    record.delivered = bool(sent) and not isinstance(action, F.Garbage | F.StaleReply)


def alter(action: F.Fault, frame: bytes, kind: str) -> bytes | None:
    """A frame with one field made wrong; None when the frame has no such field."""
    unit, pdu, tid = split_frame(kind, frame)
    if isinstance(action, F.WrongTransactionId):
        if kind != "socket":
            return None
        return struct.pack(">H", (tid + action.offset) & 0xFFFF) + frame[2:]
    if isinstance(action, F.WrongUnit):
        other = action.reply_unit if action.reply_unit is not None else (unit + 1) & 0xFF
        return BUILD[kind](other, pdu, tid)
    if isinstance(action, F.CorruptChecksum):
        if kind == "rtu":
            return frame[:-1] + bytes([frame[-1] ^ 0xFF])
        if kind == "ascii":
            lrc = int(frame[-4:-2], 16) ^ 0xFF
            return frame[:-4] + f"{lrc:02X}".encode() + frame[-2:]
        return None
    if isinstance(action, F.CorruptHeader):
        if kind != "socket":
            return None
        if action.field == "protocol":
            return frame[:2] + b"\xff\xff" + frame[4:]
        length = int.from_bytes(frame[4:6], "big") + 5
        return frame[:4] + struct.pack(">H", length) + frame[6:]
    raise AssertionError(f"unhandled fault {action!r}")  # pragma: no cover


async def no_close(reset: bool) -> None:
    """A datagram cannot be closed: the fault becomes "no reply"."""
