"""Modbus/TCP framing (MBAP header), also used for TLS and UDP.

Source: Modbus Messaging on TCP/IP Implementation Guide V1.0b, section 3.1.3.
"""

from __future__ import annotations

import struct
from typing import NoReturn

from trio_modbus.framing.base import MAX_FRAMED_PDU, Frame, FramerCounters, FramingError
from trio_modbus.framing.base import check_build_args as _check_build_args

__all__ = ["MBAPFramer"]

# Transaction id, protocol id, length (unit id + PDU), unit id; all big-endian.
_HEADER = struct.Struct(">HHHB")
_HEADER_SIZE = 7
# The length field counts the unit id and the PDU: 2..254 in the specification. Up to 261 is
# taken (a PDU of MAX_FRAMED_PDU bytes), so that a request a little too long for the PDU limit
# is answered with exception 03 rather than taken for a stream that is not Modbus.
_MIN_LENGTH = 2
_MAX_LENGTH = MAX_FRAMED_PDU + 1
_unpack_header = _HEADER.unpack_from
_pack_header = _HEADER.pack


class MBAPFramer:
    """Sans-IO MBAP framer: feed received bytes, take complete frames out.

    Frames are cut by the header's length field: a chunk may hold any number of frames and a
    frame may be split anywhere across chunks. The buffer never holds more than one partial
    frame (at most 266 bytes).

    The specification's length field is 2..254 (a PDU of at most 253 bytes). Lengths up to 261
    are taken too: such a frame is unambiguously delimited, and its PDU, a request a few bytes
    past a limit, is answered by the codec with exception 03. A protocol id other than 0 or a
    length outside 2..261 means the stream is not Modbus: ``feed`` raises
    :class:`~trio_modbus.framing.base.FramingError` (a :class:`~trio_modbus.ModbusProtocolError`)
    as soon as the bad field has arrived, and the caller closes the connection. Frames that were
    complete before the bad header in the same call are attached to the exception as ``.frames``;
    the caller may answer them before closing. The framer then stays failed: every later ``feed``
    raises again (with no frames) until :meth:`reset`.

    Example:
        >>> framer = MBAPFramer()
        >>> [frame] = framer.feed(bytes.fromhex("0001 0000 0006 11 03 006B 0003"))
        >>> frame.transaction_id, frame.unit_id, frame.pdu.hex()
        (1, 17, '03006b0003')
    """

    __slots__ = ("_buffer", "_error", "counters")

    def __init__(self) -> None:
        self._buffer = b""
        self._error: str | None = None
        self.counters = FramerCounters()

    @property
    def pending(self) -> int:
        """Number of buffered bytes (a partial frame)."""
        return len(self._buffer)

    @property
    def failed(self) -> bool:
        """Whether the framer has seen a bad header (every ``feed`` now raises)."""
        return self._error is not None

    def reset(self) -> None:
        """Forget buffered bytes and a previous failure (for example between UDP datagrams)."""
        self._buffer = b""
        self._error = None

    def take_pending(self, data: bytes | bytearray) -> bytes:
        """Return the buffered partial frame followed by ``data``, and empty the buffer.

        For a caller that parses frames itself: it feeds back what it leaves unparsed.

        Args:
            data: Bytes just received.

        Returns:
            The partial frame's bytes, then ``data``.

        Raises:
            FramingError: The framer has failed (see :meth:`feed`).
        """
        if self._error is not None:
            raise FramingError(self._error)
        buf = self._buffer + data
        self._buffer = b""
        return buf

    def feed(self, data: bytes | bytearray) -> list[Frame]:
        """Add received bytes and return every complete frame now available, in order.

        Args:
            data: Bytes received from the transport (any amount, split anywhere).

        Returns:
            The complete frames, oldest first; a partial frame stays buffered.

        Raises:
            FramingError: The stream holds a protocol id other than 0 or a length outside
                2..261 (now or in an earlier call). ``.frames`` holds the frames completed
                before the bad header in this call.
        """
        if self._error is not None:
            raise FramingError(self._error)
        buf = self._buffer + data if self._buffer else bytes(data)
        size = len(buf)
        frames: list[Frame] = []
        append = frames.append
        pos = 0
        while size - pos >= _HEADER_SIZE:
            tid, protocol, length, unit = _unpack_header(buf, pos)
            if protocol or not _MIN_LENGTH <= length <= _MAX_LENGTH:
                self._fail(buf, pos, frames, protocol, length)
            end = pos + 6 + length
            if end > size:
                break
            append(Frame(unit, buf[pos + _HEADER_SIZE : end], tid))
            pos = end
        else:
            # Fewer than 7 bytes left: check the header fields that have arrived already.
            left = size - pos
            if left >= 4:
                protocol = (buf[pos + 2] << 8) | buf[pos + 3]
                length = (buf[pos + 4] << 8) | buf[pos + 5] if left >= 6 else _MIN_LENGTH
                if protocol or not _MIN_LENGTH <= length <= _MAX_LENGTH:
                    self._fail(buf, pos, frames, protocol, length)
        self._buffer = buf[pos:] if pos else buf
        self.counters.frames += len(frames)
        return frames

    def _fail(
        self, buf: bytes, pos: int, frames: list[Frame], protocol: int, length: int
    ) -> NoReturn:
        if protocol:
            message = f"MBAP protocol id is {protocol:#06x}, expected 0 (not a Modbus stream)"
        else:
            message = f"MBAP length field is {length}, expected {_MIN_LENGTH}..{_MAX_LENGTH}"
        self._error = message + " (earlier error; connection must be closed)"
        self.counters.frames += len(frames)
        self.counters.dropped_bytes += len(buf) - pos
        self._buffer = b""
        raise FramingError(message, frames)

    def build(self, unit_id: int, pdu: bytes, transaction_id: int = 0) -> bytes:
        """Return the wire bytes of a response: MBAP header (protocol id 0) + PDU.

        Args:
            unit_id: Unit identifier, copied from the request (0..255).
            pdu: Function code + data (1..253 bytes).
            transaction_id: Transaction identifier, copied from the request (0..65535).

        Returns:
            The ADU to send.

        Raises:
            ValueError: If a value is out of range.
        """
        _check_build_args(unit_id, pdu, transaction_id)
        return _pack_header(transaction_id, 0, len(pdu) + 1, unit_id) + pdu
