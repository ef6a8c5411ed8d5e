"""Modbus over a serial line (RTU or ASCII), with one reader task that outlives the port."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Unpack, final

import trio
import trio_serial
from trio_serial.abstract import AbstractSerialStream, Parity, StopBits

from trio_modbus._errors import ConfigurationError
from trio_modbus._framer_type import FramerType
from trio_modbus.datastore import ModbusServerContext
from trio_modbus.framing import ASCIIFramer, Frame, RTUFramer, rtu_timing

from ._client import in_session, wrap_stream
from ._options import (
    DEFAULT_BAUDRATE,
    DEFAULT_REOPEN_DELAY,
    SerialOptions,
    check_names,
    check_seconds,
    framer_type,
)
from ._pipeline import Session, traced
from ._server import BaseServer

__all__ = ["SerialServer", "SerialTransport", "serve_serial"]

log = logging.getLogger("trio_modbus.server")

ASCII_CHARACTER_TIMEOUT = 1.0  # seconds; the serial line spec's default inter-character timeout
LOCAL_ECHO_WINDOW = 0.02  # seconds the echo of a reply may take (handle_local_echo)

_PARITY = {
    "N": Parity.NONE,
    "E": Parity.EVEN,
    "O": Parity.ODD,
    "M": Parity.MARK,
    "S": Parity.SPACE,
}
_STOPBITS = {1: StopBits.ONE, 1.5: StopBits.ONE_POINT_FIVE, 2: StopBits.TWO}
_PORT_GONE = (OSError, trio.BrokenResourceError, trio.ClosedResourceError)


class _PortVanished(Exception):
    pass


class SerialTransport:
    """A serial port: one reader task opens it, serves it, and reopens it when it vanishes.

    Args:
        port: The serial device.
        options: The server's options (the line's are read here).
    """

    name = "serial"
    framers = (FramerType.RTU, FramerType.ASCII)
    idle_timeout = None

    def __init__(self, port: str, options: Mapping[str, Any]) -> None:
        """Check and keep the line's options."""
        framer = options.get("framer", FramerType.RTU)
        if framer_type(framer) not in self.framers:
            raise ConfigurationError(
                f"framer of a serial server must be 'rtu' or 'ascii', not {framer!r}"
            )
        parity = options.get("parity", "N")
        stopbits = options.get("stopbits", 1)
        bytesize = options.get("bytesize", 8)
        baudrate = options.get("baudrate", DEFAULT_BAUDRATE)
        if not isinstance(parity, str) or parity.upper() not in _PARITY:
            raise ConfigurationError(f"parity must be one of N, E, O, M, S, not {parity!r}")
        if stopbits not in _STOPBITS:
            raise ConfigurationError(f"stopbits must be 1, 1.5 or 2, not {stopbits!r}")
        if bytesize not in (5, 6, 7, 8):
            raise ConfigurationError(f"bytesize must be 5, 6, 7 or 8, not {bytesize!r}")
        if isinstance(baudrate, bool) or not isinstance(baudrate, int) or baudrate <= 0:
            raise ConfigurationError(f"baudrate must be a positive int, not {baudrate!r}")
        self.reopen_delay = options.get("reopen_delay", DEFAULT_REOPEN_DELAY)
        check_seconds("reopen_delay", self.reopen_delay, "")
        self.port = port
        self.baudrate = baudrate
        self.bytesize = bytesize
        self.parity = parity.upper()
        self.stopbits = stopbits
        self.handle_local_echo: bool = options.get("handle_local_echo", False)
        # Reopen the port when it vanishes (or cannot be opened); False stops the server.
        self.reopen: bool = options.get("reopen", True)
        self.t1_5, self.t3_5 = rtu_timing(
            baudrate, bytesize=bytesize, parity=self.parity, stopbits=stopbits
        )
        self.busy_answering = False  # shutdown lets the reply in progress finish
        self.port_open = trio.Event()

    def describe(self) -> str:
        """The port and its line settings."""
        return f"{self.port} {self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"

    async def open(self) -> None:
        """Nothing: the reader task opens the port, and retries while it is missing."""

    def stop_accepting(self) -> None:
        """Nothing to close: a stopping server takes no new request (``server.draining``)."""

    def busy(self) -> bool:
        """Whether a request is being answered (a reply cut short garbles the bus)."""
        return self.busy_answering

    def close(self) -> None:
        """Nothing: the reader task closes the port when it is cancelled."""

    async def run(self, server: BaseServer, nursery: trio.Nursery) -> None:
        """Open the port and serve it; reopen it whenever it vanishes (unless ``reopen``)."""
        first = True  # warn about the first failure to open only
        opened = False  # once the port has been open, opening it again is a reopen
        while True:
            stream: AbstractSerialStream = trio_serial.SerialStream(
                self.port,
                baudrate=self.baudrate,
                bytesize=self.bytesize,
                parity=_PARITY[self.parity],
                stopbits=_STOPBITS[self.stopbits],
            )
            try:
                await stream.aopen()
            except OSError as exc:
                if not self.reopen:
                    log.error("serial port %s cannot be opened (%s); stopping", self.port, exc)
                    server.close()
                    return
                if first:
                    log.warning("serial port %s cannot be opened (%s); retrying", self.port, exc)
                first = False
                await trio.sleep(self.reopen_delay)
                continue
            if opened:
                server.counters.serial_reopens += 1
                log.info("serial port %s reopened", self.port)
            first, opened = False, True
            self.port_open.set()
            server.notify_connect(True)
            try:
                session = Session(self.name, self.port, stream, serial_line=True)
                wrapped = wrap_stream(server, stream, session)
                if wrapped is not None:
                    await in_session(
                        server.session_hook, session, self._serve_port, server, wrapped, session
                    )
            except (_PortVanished, *_PORT_GONE) as exc:
                log.warning("serial port %s lost: %s", self.port, exc or "end of file")
            finally:
                self.port_open = trio.Event()
                try:
                    await trio.aclose_forcefully(stream)  # may raise Cancelled (server stopping)
                finally:
                    server.notify_connect(False)
            if not self.reopen:
                log.info("serial port %s closed; not reopening it", self.port)
                server.close()
                return
            await trio.sleep(self.reopen_delay)

    async def _serve_port(
        self, server: BaseServer, stream: trio.abc.Stream, session: Session
    ) -> None:
        """Serve the open port until it vanishes (or the session is closed)."""
        framer = server.pipeline.new_framer(silence=True)
        assert isinstance(framer, RTUFramer | ASCIIFramer)
        silence = self.t3_5 if isinstance(framer, RTUFramer) else ASCII_CHARACTER_TIMEOUT
        diag = server.diagnostics
        counters = framer.counters
        seen = (0, 0, 0)
        echo = b""
        while session.open:
            data = b""
            if framer.pending or echo:
                # A frame in progress ends at the line's silence; our echo may come later: a
                # USB adapter holds received bytes for its latency timer (16 ms by default).
                wait = silence if framer.pending else max(silence, LOCAL_ECHO_WINDOW)
                with trio.move_on_after(wait):
                    data = bytes(await stream.receive_some(4096))
                if not data:
                    echo = b""  # an echo comes at once (within the window) or not at all
                    frames = framer.receive_silence()
                    await self._answer(server, frames, framer, stream, session)
                    continue
            else:
                data = bytes(await stream.receive_some(4096))
            if not data:
                raise _PortVanished()
            if echo:
                # Drop the echo of our own reply (two-wire RS-485 adapters hear themselves).
                # Only bytes that are the echo go: anything else means there is none (the
                # adapter does not echo), and those bytes are a request.
                if data.startswith(echo):
                    data, echo = data[len(echo) :], b""
                elif echo.startswith(data):
                    echo = echo[len(data) :]
                    continue
                else:
                    echo = b""
            if server.trace_packet is not None:
                data = traced(server.trace_packet, False, data)
            frames = framer.feed(data)
            # Bus-level counters come from the framer: every frame seen on the line (ours,
            # other stations' requests and responses) and every corrupt one.
            now = (counters.frames, counters.comm_errors, counters.overruns)
            diag.bus_message_count += now[0] - seen[0]
            diag.bus_communication_error_count += now[1] - seen[1]
            diag.bus_character_overrun_count += now[2] - seen[2]
            seen = now
            sent = await self._answer(server, frames, framer, stream, session)
            if self.handle_local_echo and sent:
                echo += sent
            if isinstance(framer, ASCIIFramer) and framer.delimiter != diag.ascii_delimiter:
                framer.set_delimiter(diag.ascii_delimiter)  # changed by FC 08/03

    async def _answer(
        self,
        server: BaseServer,
        frames: list[Frame],
        framer: RTUFramer | ASCIIFramer,
        stream: trio.abc.Stream,
        session: Session,
    ) -> bytes:
        """Answer ``frames`` and send the replies; what was sent (for the local echo)."""
        if not frames or server.draining:  # a stopping server takes no new request
            return b""
        self.busy_answering = True  # shutdown lets this finish: a reply cut short garbles the bus
        try:
            out: list[bytes] = []
            replies = await server.pipeline.answer(frames, framer, session, out)
            if not out:
                return b""
            data = b"".join(out)
            if server.trace_packet is not None:
                data = traced(server.trace_packet, True, data)
            await stream.send_all(data)
            server.counters.responses += replies
            return data
        finally:
            self.busy_answering = False
            server.work_ended()


@final
class SerialServer(BaseServer):
    """A Modbus server on a serial line. Create it with :func:`serve_serial`; takes its options."""

    def __init__(
        self,
        context: ModbusServerContext | None = None,
        *,
        port: str,
        **options: Unpack[SerialOptions],
    ) -> None:
        """Check the options (see :func:`serve_serial`); the port opens in ``serve``."""
        check_names(options, SerialOptions, "serve_serial")
        self.line = SerialTransport(port, options)
        super().__init__(context, self.line, options)

    @property
    def port(self) -> str:
        """The serial device."""
        return self.line.port

    @property
    def port_open(self) -> trio.Event:
        """Set while the port is open (a new event each time it closes)."""
        return self.line.port_open


def serve_serial(
    context: ModbusServerContext | None = None, *, port: str, **options: Unpack[SerialOptions]
) -> SerialServer:
    """A Modbus server on a serial line (RTU or ASCII).

    One reader task owns the port. Requests for unit ids the context does not hold belong to
    other stations and get no reply; unit 0 is a broadcast (executed on every device when
    ``broadcast`` is on, never answered). If the port vanishes (a USB adapter unplugged), the
    server keeps running and reopens it every ``reopen_delay`` seconds.

    Example (the test recipe: a pty pair from ``socat -d -d pty,raw,echo=0 pty,raw,echo=0``)::

        async with serve_serial(context, port="/dev/pts/5", baudrate=115200) as server:
            ...  # a client opens the other end of the pair

    Args:
        context: A ``ModbusServerContext`` (or give ``service=``).
        port: The serial device (e.g. ``/dev/ttyUSB0``).
        **options: The options every server takes (``service``, ``identity``,
            ``custom_functions`` with their RTU frame sizes, ``broadcast``, ``trace_packet``,
            ``trace_pdu``, ``trace_connect`` (True when the port opens, False when it
            closes), ``session_hook`` (around each opening of the port); see
            :func:`~trio_modbus.server.serve_tcp`), and:

            - ``framer``: ``FramerType.RTU`` (default) or ``FramerType.ASCII``.
            - ``baudrate``: Line speed (19200).
            - ``bytesize``: Data bits (8).
            - ``parity``: ``"N"`` (default), ``"E"``, ``"O"``, ``"M"`` or ``"S"``.
            - ``stopbits``: 1 (default), 1.5 or 2.
            - ``handle_local_echo``: Drop the echo of our own replies.
            - ``reopen``: Reopen the port when it vanishes or cannot be opened (True); False
              stops the server then.
            - ``reopen_delay``: Seconds between attempts to (re)open the port (1).
            - ``stream_wrapper``: ``(stream, session) -> stream``: the stream each opening of
              the port is served through, to see or alter its bytes (as for TCP).

    Returns:
        The server (not yet running).

    Raises:
        ConfigurationError: A bad option value (named in the message).
        TypeError: An unknown option, or neither (or both) of ``context`` and ``service``.
    """
    return SerialServer(context, port=port, **options)
