"""The loop of one byte-stream client: receive → framer (or lane) → pipeline → send.

:func:`serve_connection` serves a TCP/TLS connection (or any ``trio.abc.Stream``): it answers
every complete frame of a read, in order, at most ``max_in_flight`` before sending their
answers, and sends the answers of a read together. The connection's clocks are in
``_clock.py``; how its answers go out (:class:`Output`) is chosen once per connection.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, cast

import trio

from trio_modbus._errors import ModbusProtocolError
from trio_modbus.framing import MBAPFramer

from ._pipeline import AnyFramer, Session, traced
from ._stream import SocketStream

if TYPE_CHECKING:
    from ._clock import Connection
    from ._lane import MBAPLane
    from ._server import BaseServer

__all__ = ["Output", "serve_connection"]

log = logging.getLogger("trio_modbus.server")
conn_log = logging.getLogger("trio_modbus.connection")
wire_log = logging.getLogger("trio_modbus.wire")

_BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


class _LaneDefect(Exception):
    """The fast lane failed (a defect, logged): the connection closes."""


class Output:
    """The answers of a read not yet sent, and how they go out; counted once sent.

    At most ``room`` answers wait before they must go. How they go is chosen once per
    connection: a plain TCP socket without a ``trace_packet`` hook sends without a trip
    through the scheduler when the socket takes the answers at once (it nearly always does);
    other streams (TLS, wrapped streams, memory streams in tests) go through the ``Stream``
    interface.
    """

    __slots__ = ("_conn", "_counters", "_lean", "_stream", "_trace", "out", "replies", "room")

    def __init__(self, stream: trio.abc.Stream, conn: Connection, server: BaseServer) -> None:
        """Pick the way to send on ``stream``."""
        self.out: list[bytes] = []
        self.replies = 0
        self.room = server.max_in_flight
        self._stream = stream
        self._conn = conn
        self._counters = server.counters
        self._trace = server.trace_packet
        self._lean = stream if type(stream) is SocketStream and self._trace is None else None

    def send_now(self) -> bytes | None:
        """Send the pending answers if the socket takes them at once (no coroutine).

        Returns:
            None when done (sent and counted, or the peer has gone); else the bytes that
            :meth:`send` must still send (the pending answers are taken either way).
        """
        out = self.out
        data = b"".join(out) if len(out) > 1 else out[0]
        self.out = []
        lean = self._lean
        if lean is None:
            return data
        try:
            sent = lean.send_nowait(data)
        except OSError:
            self.replies = 0
            return None  # the peer went away: the next receive notices and ends the connection
        if wire_log.isEnabledFor(logging.DEBUG):
            wire_log.debug("%s send %s", self._conn.peer, data.hex(" "))
        if sent == len(data):
            self._counters.responses += self.replies
            self.replies = 0
            return None
        return data[sent:] if sent else data

    async def send(self, data: bytes) -> None:
        """Send what :meth:`send_now` left, waiting for the client to take it."""
        replies, self.replies = self.replies, 0
        if self._trace is not None:
            data = traced(self._trace, True, data)
        conn = self._conn
        if self._lean is None and wire_log.isEnabledFor(logging.DEBUG):
            wire_log.debug("%s send %s", conn.peer, data.hex(" "))
        if data:
            # A client that stops reading gets idle_timeout to take its answers, then is
            # closed (the watchdog arms the deadline of a send that waits, timed from its
            # start): it cannot hold a connection slot forever.
            conn.sending = True
            try:
                await self._stream.send_all(data)
            except _BROKEN:
                return  # the peer went away: the next receive notices and ends the connection
            finally:
                conn.sending = False
            conn.sent()
        self._counters.responses += replies

    async def flush(self) -> None:
        """Send the pending answers (and wait, if the client is slow to take them)."""
        if self.out:
            rest = self.send_now()
            if rest is not None:
                await self.send(rest)


def _frame_end(data: bytes | bytearray, pos: int, size: int) -> int:
    """Where the MBAP frame at ``data[pos:]`` ends, or ``size`` when it is incomplete."""
    if size - pos < 6:
        return size
    return min(size, pos + 6 + (data[pos + 4] << 8 | data[pos + 5]))


async def serve_connection(
    stream: trio.abc.Stream, conn: Connection, server: BaseServer, session: Session
) -> None:
    """Serve one stream until EOF, error, idle or frame timeout, shutdown or session close."""
    framer = server.pipeline.new_framer()
    lane = server.pipeline.lane(framer)
    batch = Output(stream, conn, server)
    room = batch.room
    trace_packet = server.trace_packet
    connections = server.connections
    counters = server.counters
    diag = server.diagnostics
    receive = stream.receive_some
    current_time = trio.current_time
    conn.last_time = current_time()
    before = 0  # frames completed when a partial frame was last seen
    with conn.scope:
        while session.open and not server.draining:
            conn.idle = True
            try:
                data = await receive(65536)
            except _BROKEN:
                break
            received = current_time()
            conn.woke(received)
            if not data:
                break
            connections.touch(conn)
            if trace_packet is not None:
                data = traced(trace_packet, False, data)
            if wire_log.isEnabledFor(logging.DEBUG):
                wire_log.debug("%s recv %s", conn.peer, data.hex(" "))
            pos = 0
            if lane is not None and not framer.pending:
                # The common case without a coroutine: the lane answers the whole read.
                try:
                    pos, count = lane.run(data, 0, batch.out, room)
                except Exception:
                    log.exception("%s: the fast lane failed; closing", conn.peer)
                    break  # a defect of the lane must not take the server down
                if count:
                    batch.replies = count
                    counters.requests += count
                    diag.bus_message_count += count
                    framer.counters.frames += count
            error: ModbusProtocolError | None = None
            if pos < len(data) or batch.replies >= room:
                try:
                    error = await _answer_read(
                        data, pos, framer, lane, server, session, conn, batch
                    )
                except _LaneDefect:
                    break
            if batch.out:
                rest = batch.send_now()
                if rest is not None:
                    await batch.send(rest)
            if error is not None:
                counters.protocol_errors += 1
                conn_log.warning("%s: closing, not Modbus: %s", conn.peer, error)
                break
            if framer.pending or conn.frame_deadline != math.inf:
                completed = framer.counters.frames
                conn.track_frame(framer.pending, completed, before, received)
                before = completed
    if conn.scope.cancelled_caught and not server.draining:
        _report_timeout(conn, server)


async def _answer_read(
    data: bytes | bytearray,
    pos: int,
    framer: AnyFramer,
    lane: MBAPLane | None,
    server: BaseServer,
    session: Session,
    conn: Connection,
    batch: Output,
) -> ModbusProtocolError | None:
    """Answer the complete frames of ``data[pos:]`` onto ``batch``, sending whenever it is full.

    The lane answers the common requests straight from ``data``; it stops at a frame it does
    not take, which goes through the framer and the pipeline alone.

    Returns:
        The framer's error when the stream is not Modbus (after answering what came before).
    """
    counters = server.counters
    room = batch.room
    if lane is not None and framer.pending:
        data = cast(MBAPFramer, framer).take_pending(data)
    size = len(data)
    if batch.replies >= room:
        await batch.flush()
    while pos < size:
        if lane is not None:
            try:
                pos, count = lane.run(data, pos, batch.out, room - batch.replies)
            except Exception as exc:
                # A defect of the lane must not take the server down: say so loudly, and
                # close this connection (its state is unknown).
                log.exception("%s: the fast lane failed; closing", conn.peer)
                raise _LaneDefect from exc
            if count:
                batch.replies += count
                counters.requests += count
                server.diagnostics.bus_message_count += count
                framer.counters.frames += count
            if batch.replies >= room:
                await batch.flush()
                continue
            if pos >= size:
                break
            end = _frame_end(data, pos, size)
        else:
            # The whole read at once: a frame without a length rule (RTU) ends where the
            # bytes received end, not where a piece of them would.
            end = size
        error: ModbusProtocolError | None = None
        try:
            frames = framer.feed(data[pos:end])
        except ModbusProtocolError as exc:
            frames, error = list(getattr(exc, "frames", ())), exc
        pos = end
        while frames:  # at most ``room`` requests before their answers are sent
            free = room - batch.replies
            chunk = frames if len(frames) <= free else frames[:free]
            batch.replies += await server.pipeline.answer(chunk, framer, session, batch.out)
            # The pipeline may have taken a while (an async service): the connection was
            # busy until now, whether or not a reply follows.
            conn.last_time = trio.current_time()
            if batch.replies >= room:
                await batch.flush()
            frames = [] if chunk is frames else frames[free:]
        if error is not None:
            return error
    return None


def _report_timeout(conn: Connection, server: BaseServer) -> None:
    """Count and log why the scope of ``conn`` ran out: its frame's deadline, or idleness."""
    now = trio.current_time()
    if not conn.serving and now >= conn.frame_deadline:
        server.counters.frame_timeouts += 1
        conn_log.info(
            "%s: a frame started %ss ago is still incomplete, closed",
            conn.peer,
            conn.frame_timeout,
        )
    elif now >= conn.scope.deadline:
        server.counters.idle_timeouts += 1
        conn_log.info("%s: idle for %ss, closed", conn.peer, server.idle_timeout)
