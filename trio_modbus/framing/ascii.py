"""Modbus ASCII framing: ``:`` + hex(address, PDU, LRC) + CR + delimiter (LF by default).

Source: Modbus over Serial Line V1.02, section 2.5.2 (ASCII), and the Modbus Application
Protocol V1.1b3, section 6.8.1 (FC 08 sub-function 03: change ASCII input delimiter).
"""

from __future__ import annotations

import binascii

from trio_modbus.framing.base import MAX_FRAMED_ASCII, Frame, FramerCounters
from trio_modbus.framing.base import check_build_args as _check_build_args
from trio_modbus.framing.crc import lrc

__all__ = ["DEFAULT_ASCII_DELIMITER", "ASCIIFramer"]

# The end-of-frame character after CR, until FC 08 sub-function 03 changes it.
DEFAULT_ASCII_DELIMITER = 0x0A
_COLON = 0x3A
_CR = 0x0D
_HEX_DIGITS = b"0123456789ABCDEFabcdef"
# Smallest frame content: address, function code and LRC, two hex digits each.
_MIN_HEX = 6


class ASCIIFramer:
    """Sans-IO ASCII framer: feed received characters, take complete frames out.

    A frame starts at ``:`` and ends at CR followed by the delimiter. Hex digits may be upper or
    lower case. What is dropped, and how it is counted in
    :attr:`~trio_modbus.framing.base.Framer.counters`:

    * characters outside a frame (before a ``:``): ``dropped_bytes``;
    * a frame with a non-hex character, an odd number of digits, fewer than 6 digits (address,
      function code, LRC) or a bad LRC: one ``comm_errors``, its characters in ``dropped_bytes``;
    * a ``:`` inside a frame restarts the frame: the unfinished part counts one ``comm_errors``
      and its characters go to ``dropped_bytes``;
    * more than 527 characters without an end: one ``overruns``; the characters are dropped and
      the framer waits for the next ``:``. The buffer never holds more than 526 characters.

    The specification's largest frame is 513 characters (a PDU of 253 bytes). Frames of up to
    527 characters (a PDU of up to 260 bytes) are still decoded, so that a request a little
    too long for the PDU limit is answered with exception 03 rather than dropped.

    Frames are returned whatever their address (the server decides); ASCII cannot tell a
    request from another station's response without decoding it.
    """

    __slots__ = ("_buffer", "_end", "counters")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._end = bytes((_CR, DEFAULT_ASCII_DELIMITER))
        self.counters = FramerCounters()

    @property
    def pending(self) -> int:
        """Number of buffered characters (a partial frame, from its ``:``)."""
        return len(self._buffer)

    @property
    def delimiter(self) -> int:
        """The character that ends a frame after CR (LF unless changed)."""
        return self._end[1]

    def set_delimiter(self, value: int) -> None:
        """Change the end-of-frame character (FC 08 sub-function 03, "change input delimiter").

        Args:
            value: The new character, 0..255, anything but ``:``.

        Raises:
            ValueError: If the value is out of range or is ``:``.
        """
        if not 0 <= value <= 0xFF or value == _COLON:
            raise ValueError(f"delimiter must be 0..255 and not ':' (0x3A), got {value}")
        self._end = bytes((_CR, value))

    def reset(self) -> None:
        """Forget a partial frame (without counting it); the delimiter is kept."""
        self._buffer.clear()

    def receive_silence(self) -> list[Frame]:
        """Tell the framer that the inter-character timeout elapsed: drop a partial frame.

        The partial frame counts one ``comm_errors`` and its characters go to ``dropped_bytes``.

        Returns:
            Always an empty list (kept for symmetry with the RTU framer).
        """
        if self._buffer:
            self.counters.comm_errors += 1
            self.counters.dropped_bytes += len(self._buffer)
            self._buffer.clear()
        return []

    def feed(self, data: bytes | bytearray) -> list[Frame]:
        """Add received characters and return every complete, valid frame now available.

        Args:
            data: Characters received from the serial line (any amount, split anywhere).

        Returns:
            The valid frames, oldest first; a partial frame stays buffered.
        """
        frames: list[Frame] = []
        counters = self.counters
        buf = self._buffer
        end = self._end
        size = len(data)
        pos = 0
        while pos < size:
            if not buf:
                start = data.find(b":", pos)
                if start < 0:
                    counters.dropped_bytes += size - pos
                    break
                counters.dropped_bytes += start - pos
                buf.append(_COLON)
                pos = start + 1
            colon = data.find(b":", pos)
            stop = colon if colon >= 0 else size
            content = b""
            if len(buf) > 1 and buf[-1] == _CR and pos < stop and data[pos] == end[1]:
                content = bytes(buf[1:-1])
                after = pos + 1
            else:
                found = data.find(end, pos, stop)
                if found < 0:
                    after = -1
                else:
                    content = bytes(buf[1:]) + data[pos:found]
                    after = found + 2
            if after >= 0:
                length = len(buf) + after - pos
                buf.clear()
                pos = after
                if length > MAX_FRAMED_ASCII:
                    counters.overruns += 1
                    counters.dropped_bytes += length
                    continue
                frame = _decode(content)
                if frame is None:
                    counters.comm_errors += 1
                    counters.dropped_bytes += length
                else:
                    counters.frames += 1
                    frames.append(frame)
                continue
            if len(buf) + stop - pos >= MAX_FRAMED_ASCII:
                counters.overruns += 1
                counters.dropped_bytes += len(buf) + stop - pos
                buf.clear()
                pos = stop
                continue
            buf += data[pos:stop]
            pos = stop
            if colon >= 0:
                counters.comm_errors += 1
                counters.dropped_bytes += len(buf)
                buf.clear()
        return frames

    def build(self, unit_id: int, pdu: bytes, transaction_id: int = 0) -> bytes:
        """Return the wire characters of a response: ``:`` + upper-case hex + LRC + CR + delimiter.

        Args:
            unit_id: The server address (1..247; 0..255 accepted).
            pdu: Function code + data (1..253 bytes).
            transaction_id: Ignored (ASCII has none); accepted so every framer builds alike.

        Returns:
            The frame to send.

        Raises:
            ValueError: If a value is out of range.
        """
        _check_build_args(unit_id, pdu, transaction_id)
        raw = bytes((unit_id,)) + pdu
        raw += bytes((lrc(raw),))
        return b":" + binascii.hexlify(raw).upper() + self._end


def _decode(content: bytes) -> Frame | None:
    """Decode the hex between ``:`` and CR; None if it is not a valid frame."""
    if len(content) < _MIN_HEX or len(content) % 2 or content.translate(None, _HEX_DIGITS):
        return None
    raw = binascii.unhexlify(content)
    if sum(raw) & 0xFF:
        return None
    return Frame(raw[0], raw[1:-1])
