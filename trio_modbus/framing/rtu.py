"""Modbus RTU framing for the server role on a (possibly shared) serial line.

Source: Modbus over Serial Line V1.02, section 2.5.1 (RTU), and the request / response layouts
of the Modbus Application Protocol V1.1b3, section 6.

Frame ends are found from the function code (a fixed length or a byte-count field, for the
request and for the response layout, as :mod:`trio_modbus._layouts` states them) and confirmed
by the CRC; silence on the line is an input (:meth:`RTUFramer.receive_silence`), never a clock
read here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from trio_modbus._layouts import (
    DIAGNOSTIC_HEADER,
    EXCEPTION_RESPONSE_LENGTH,
    LAYOUTS,
    MEI_HEADER,
    MEI_READ_DEVICE_ID,
    Layout,
    LayoutKind,
)
from trio_modbus.framing.base import MAX_FRAMED_RTU_ADU, MAX_RTU_ADU, Frame, FramerCounters
from trio_modbus.framing.base import check_build_args as _check_build_args
from trio_modbus.framing.crc import _TABLE, crc16_bytes

__all__ = [
    "RTU_FAST_T15",
    "RTU_FAST_T35",
    "RTUFramer",
    "RtuSizeRule",
    "rtu_timing",
]

# Fixed inter-character (t1.5) and inter-frame (t3.5) times above 19200 baud, in seconds.
RTU_FAST_T15 = 0.00075
RTU_FAST_T35 = 0.00175
# Above this baud rate the fixed times apply.
_FAST_BAUDRATE = 19200
# An RTU ADU is the PDU with the address before it and 2 CRC bytes after it.
_ADU_OVERHEAD = 3
# Smallest RTU ADU: address, function code, 2 CRC bytes.
_MIN_ADU = 4
# Largest ADU taken from the line: past the specification's 256 bytes by a few, so that a
# request a little too long for the PDU limit is answered with exception 03, not dropped.
_MAX_ADU = MAX_FRAMED_RTU_ADU

# Layout kinds: how to find the ADU length from the bytes at the head of the buffer.
_FIXED = 0  # param = ADU length
_COUNT = 1  # param = offset of a one-byte byte count; length = adu[param] + param + 3
_SEARCH = 2  # param = minimum length; shortest length whose CRC matches
_DIAG = 3  # FC 08: param = ADU length, except sub-function 0000 (echo of any data): search
_MEI_REQUEST = 4  # FC 2B: MEI type 0E -> param = ADU length, other MEI types -> search
_MEI_RESPONSE = 5  # FC 2B: MEI type 0E -> param = header length, then the objects; else search
# The shortest FC 08 and FC 2B ADUs (a search starts there).
_MIN_DIAG_ADU = DIAGNOSTIC_HEADER + _ADU_OVERHEAD
_MIN_MEI_ADU = MEI_HEADER + _ADU_OVERHEAD

# Results of _length besides a length.
_NEED = -1  # more bytes are needed to know the length
_INVALID = 0  # these bytes cannot have this layout
_OVERRUN = -2  # a search found no frame end within the largest ADU

# Scan mode bits.
_FINAL = 1  # silence: no more bytes will join the buffered ones
_RESYNCING = 2  # after an error: the head is not a trusted frame boundary, no CRC search
_TIMED = 4  # the caller reports silence: a frame without a length rule ends at the silence
_NESTED = 8  # checking whether a frame follows a CRC match: any CRC match will do

_Layout = tuple[int, int, bool]  # (kind, param, is_request)
_Match = tuple[int, bool]  # (length or _NEED / _INVALID / _OVERRUN, is_request)


def _rtu_layout(layout: Layout) -> tuple[int, int]:
    """The RTU layout (kind, param) of a PDU layout of the table."""
    kind, size = layout
    if kind == LayoutKind.FIXED:
        return _FIXED, size + _ADU_OVERHEAD
    if kind == LayoutKind.COUNTED:
        # The byte count is the header's last byte: PDU offset size - 1, ADU offset size.
        return _COUNT, size
    if kind == LayoutKind.DIAGNOSTIC:
        return _DIAG, size + _ADU_OVERHEAD
    if kind == LayoutKind.DEVICE_ID:
        return _MEI_REQUEST, size + _ADU_OVERHEAD
    assert kind == LayoutKind.DEVICE_ID_OBJECTS
    return _MEI_RESPONSE, 1 + size  # the header with the address before it


# Request and response layouts of the public function codes (address at offset 0, CRC included).
_REQUESTS: dict[int, tuple[int, int]] = {
    fc: _rtu_layout(entry.request) for fc, entry in LAYOUTS.items()
}
_RESPONSES: dict[int, tuple[int, int]] = {
    fc: _rtu_layout(entry.response) for fc, entry in LAYOUTS.items()
}
# An exception response: address, function code | 0x80, exception code, CRC.
_EXCEPTION_LAYOUTS: tuple[_Layout, ...] = (
    (_FIXED, EXCEPTION_RESPONSE_LENGTH + _ADU_OVERHEAD, False),
)
# A function code without a known layout: shortest CRC match from the minimum ADU.
_UNKNOWN_LAYOUTS: tuple[_Layout, ...] = ((_SEARCH, _MIN_ADU, True),)


@dataclass(frozen=True, slots=True)
class RtuSizeRule:
    """How to find the RTU frame length of a custom function (pymodbus's semantics).

    Give one of the two; with neither, the frame end is searched by CRC like an unknown function.

    Attributes:
        frame_size: The whole ADU length, address and the 2 CRC bytes included (4..256), for a
            fixed-length frame (for example 4 for a request without data).
        byte_count_pos: Offset of the one-byte byte count within the ADU (address at offset 0);
            the ADU length is ``adu[byte_count_pos] + byte_count_pos + 3``.
    """

    frame_size: int = 0
    byte_count_pos: int = 0

    def __post_init__(self) -> None:
        if self.frame_size and self.byte_count_pos:
            raise ValueError("give frame_size or byte_count_pos, not both")
        if self.frame_size and not _MIN_ADU <= self.frame_size <= MAX_RTU_ADU:
            raise ValueError(
                f"frame_size must be {_MIN_ADU}..{MAX_RTU_ADU}, got {self.frame_size}"
            )
        if self.byte_count_pos and not 2 <= self.byte_count_pos <= MAX_RTU_ADU - 3:
            raise ValueError(
                f"byte_count_pos must be 2..{MAX_RTU_ADU - 3}, got {self.byte_count_pos}"
            )
        if self.frame_size < 0 or self.byte_count_pos < 0:
            raise ValueError("frame_size and byte_count_pos must not be negative")

    def _layout(self, is_request: bool) -> _Layout:
        if self.frame_size:
            return (_FIXED, self.frame_size, is_request)
        if self.byte_count_pos:
            return (_COUNT, self.byte_count_pos, is_request)
        return (_SEARCH, _MIN_ADU, is_request)


def _standard_layouts(function_code: int) -> tuple[_Layout, ...]:
    if function_code >= 0x80:
        return _EXCEPTION_LAYOUTS
    request = _REQUESTS.get(function_code)
    if request is None:
        return _UNKNOWN_LAYOUTS
    response = _RESPONSES[function_code]
    if response == request:
        return ((*request, True),)
    return ((*request, True), (*response, False))


# The standard layouts by function code (for telling whether a frame follows a CRC match).
_STANDARD: list[tuple[_Layout, ...]] = [_standard_layouts(fc) for fc in range(256)]


def _search(buf: bytes, off: int, avail: int, minimum: int, mode: int) -> int:
    """The length of a frame without a length rule: where its CRC matches (residue 0).

    A CRC matches by chance inside data about once in 65536 positions, so the first match
    alone would cut such frames short. Of the lengths (at least ``minimum``, at most the
    largest ADU) where the CRC matches:

    * the end of the bytes at hand wins: with ``_TIMED`` they are complete only at the silence
      (before it the frame needs more bytes), without it (RTU over TCP) they are what the
      client sent in one piece;
    * else the first after which a complete frame of a known layout follows (the client sent
      more requests with it);
    * else the first.
    """
    if mode & _RESYNCING:
        return _INVALID
    if mode & _TIMED and not mode & _FINAL and avail < _MAX_ADU:
        return _NEED
    table = _TABLE
    limit = min(avail, _MAX_ADU)
    crc = 0xFFFF
    matches: list[int] = []
    for length, byte in enumerate(buf[off : off + limit], 1):
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
        if not crc and length >= minimum:
            matches.append(length)
    if not matches:
        if avail >= _MAX_ADU:
            return _OVERRUN
        return _INVALID if mode & _FINAL else _NEED
    if mode & _NESTED:
        return matches[0]
    if matches[-1] == avail or len(matches) == 1:
        return matches[-1]
    for length in matches:
        rest = avail - length
        if rest >= _MIN_ADU:
            after = off + length
            if _match(_STANDARD[buf[after + 1]], buf, after, rest, _FINAL | _NESTED)[0] > 0:
                return length
    return matches[0]


def _mei_response_length(buf: bytes, off: int, avail: int, header: int) -> int:
    """Walk a read-device-identification response: the header, then (id, len, value)...

    ``header`` counts the address; its last byte is the number of objects.
    """
    if avail < header:
        return _NEED
    pos = header
    for _ in range(buf[off + header - 1]):
        if pos + 2 > avail:
            return _NEED
        pos += 2 + buf[off + pos + 1]
        if pos + 2 > _MAX_ADU:
            return _INVALID
    return pos + 2


def _length(kind: int, param: int, buf: bytes, off: int, avail: int, mode: int) -> int:
    if kind == _FIXED:
        return param
    if kind == _COUNT:
        return buf[off + param] + param + 3 if avail > param else _NEED
    if kind == _SEARCH:
        return _search(buf, off, avail, param, mode)
    if kind == _DIAG:
        if avail < 4:
            return _NEED
        if buf[off + 2] or buf[off + 3]:
            return param
        return _search(buf, off, avail, _MIN_DIAG_ADU, mode)
    if avail < 3:
        return _NEED
    if buf[off + 2] != MEI_READ_DEVICE_ID:
        return _search(buf, off, avail, _MIN_MEI_ADU, mode)
    if kind == _MEI_REQUEST:
        return param
    return _mei_response_length(buf, off, avail, param)


def _match(layouts: tuple[_Layout, ...], buf: bytes, off: int, avail: int, mode: int) -> _Match:
    """Try the layouts in order at ``off``: (length, is_request) of the first CRC match.

    Returns ``(_NEED, False)`` when a layout needs bytes that have not arrived (never in final
    mode), ``(_INVALID or _OVERRUN, False)`` when none fits.
    """
    table = _TABLE
    result = _INVALID
    for kind, param, is_request in layouts:
        length = param if kind == _FIXED else _length(kind, param, buf, off, avail, mode)
        if length > _MAX_ADU:
            continue  # longer than any frame taken, whether or not its bytes are here yet
        if length == _NEED or length > avail:
            if mode & _FINAL:
                continue
            return _NEED, False
        if length < _MIN_ADU:
            if length == _OVERRUN:
                result = _OVERRUN
            continue
        crc = 0xFFFF
        for byte in buf[off : off + length]:
            crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
        if not crc:
            return length, is_request
    return result, False


def _lookahead(layouts_of: list[tuple[_Layout, ...]], buf: bytes, start: int, size: int) -> int:
    """Return the first offset >= start where a complete known-layout frame's CRC matches."""
    for off in range(start, size - _MIN_ADU + 1):
        length, _ = _match(layouts_of[buf[off + 1]], buf, off, size - off, _FINAL | _RESYNCING)
        if length > 0:
            return off
    return -1


class RTUFramer:
    """Sans-IO RTU framer for a server: feed received bytes, take complete requests out.

    How a frame end is found, at the head of the buffer:

    * The function code selects the candidate layouts: the request layout first, then the
      response layout (another station answering on a shared bus), each a fixed length or a
      byte-count field; an exception response (function code | 0x80) is 5 bytes. The first
      candidate whose CRC matches wins. If a candidate needs bytes that have not arrived yet,
      the framer waits for them before trying the next one (so a request is never mistaken for
      a shorter response). Layouts that are identical for request and response (05, 06, 08,
      15, 16, ...) resolve as requests.
    * A function code without a known layout (and FC 08 sub-function 0000, whose echo data may
      have any length, and FC 2B with an MEI type other than 0E) has no length rule; its CRC
      decides. With ``silence_delimits`` (a serial line, whose silences the caller reports)
      the frame ends at the silence when the CRC matches there. Without it (RTU over TCP) it
      ends at the end of the bytes fed so far when the CRC matches there (a client sends a
      frame in one piece). Otherwise it ends at the first CRC match (at least 4 bytes, at
      most 263) that a complete frame of a known layout follows (more requests sent with
      it), or else at the first CRC match. A CRC matches by chance at about one position in
      65536, so the first match alone would cut about one echo of 125 random bytes in 500
      short.
      If no CRC matches yet, the framer waits for more bytes, for silence, or for 263 bytes
      (then it counts an overrun and resynchronises). This search runs only at a trusted
      frame boundary: the first byte after silence (or after creation / :meth:`reset`) or the
      byte after a good frame. While resynchronising, only known layouts are recognised
      (otherwise nearly every noise byte would look like an unknown function and stall the
      line).
    * When no candidate matches, one byte is dropped and the search restarts at the next byte
      (resynchronisation). The whole episode, up to the next good frame or silence, counts
      one communication error.
    * While resynchronising, a head that cannot be decided yet (a noise byte read as the start
      of a long frame) does not stall the line: the first complete, CRC-valid frame of a known
      layout in the buffer becomes the new frame boundary and the bytes before it are dropped.

    Frames of up to 263 bytes are taken, 7 more than the specification's 256, so that a
    request a little too long for the PDU limit (0x10 with 124 registers) reaches the codec
    and is answered with exception 03 instead of being dropped.

    What can be recovered: every frame up to an error; after an error, every frame from the
    first complete CRC-valid frame of a known layout, or from the next silence. A frame found
    only by CRC search (unknown function) directly after noise, with no silence between, is
    lost. Like any CRC-16 receiver, about 1 candidate in 65536 matches by chance.

    CRC-valid requests are returned whatever their address (0 = broadcast; other addresses
    are for other stations: the server decides). CRC-valid responses are counted in
    ``counters.frames`` and skipped.

    :meth:`receive_silence` (t3.5 elapsed) marks a frame boundary: every candidate that would
    need more bytes is now known to be wrong, so the buffered bytes are scanned to the end
    (which can still yield frames, returned by it) and the stale rest is discarded.

    Args:
        custom_sizes: Request layouts of custom function codes, by function code.
        silence_delimits: The caller calls :meth:`receive_silence` at every t3.5 of silence
            (a serial server does): frames without a length rule then end at the silence.
    """

    __slots__ = ("_buffer", "_layouts", "_mode", "_resyncing", "counters")

    def __init__(
        self,
        *,
        custom_sizes: Mapping[int, RtuSizeRule] | None = None,
        silence_delimits: bool = False,
    ) -> None:
        self._buffer = b""
        self._mode = _TIMED if silence_delimits else 0
        self._resyncing = False
        self._layouts: list[tuple[_Layout, ...]] = list(_STANDARD)
        self.counters = FramerCounters()
        if custom_sizes:
            for function_code, rule in custom_sizes.items():
                self._register(function_code, rule, None)

    @property
    def pending(self) -> int:
        """Number of buffered bytes (a partial frame; at most 262 after ``feed``)."""
        return len(self._buffer)

    def reset(self) -> None:
        """Forget buffered bytes (without counting them)."""
        self._buffer = b""
        self._resyncing = False

    def register_function(
        self,
        function_code: int,
        *,
        frame_size: int = 0,
        byte_count_pos: int = 0,
        response: RtuSizeRule | None = None,
    ) -> None:
        """Declare the RTU layout of a custom function code (replacing any standard layout).

        Args:
            function_code: The function code, 1..127.
            frame_size: Whole request ADU length, address and CRC included (e.g. 4 for a request
                without data).
            byte_count_pos: Offset of the request's byte-count byte within the ADU (address at
                offset 0); the length is ``adu[byte_count_pos] + byte_count_pos + 3``.
            response: The layout of this function's responses, so that other stations' answers
                on a shared bus are recognised and skipped; without it they are resynchronised
                over (and count as one communication error).

        Raises:
            ValueError: If the function code or a size is out of range, or both sizes are given.
        """
        rule = RtuSizeRule(frame_size=frame_size, byte_count_pos=byte_count_pos)
        self._register(function_code, rule, response)

    def _register(
        self, function_code: int, rule: RtuSizeRule, response: RtuSizeRule | None
    ) -> None:
        if not 1 <= function_code <= 0x7F:
            raise ValueError(f"function_code must be 1..127, got {function_code}")
        layouts = [rule._layout(True)]
        if response is not None and response != rule:
            layouts.append(response._layout(False))
        self._layouts[function_code] = tuple(layouts)

    def feed(self, data: bytes | bytearray) -> list[Frame]:
        """Add received bytes and return every complete request now available, in order.

        Args:
            data: Bytes received from the serial line (any amount, split anywhere).

        Returns:
            The CRC-valid requests, oldest first; a partial frame stays buffered.
        """
        buf = self._buffer + data if self._buffer else bytes(data)
        return self._scan(buf, final=False)

    def receive_silence(self) -> list[Frame]:
        """Tell the framer that t3.5 of silence has elapsed: the current frame has ended.

        Buffered bytes are scanned with that knowledge (a frame whose end could only be found by
        the silence is returned), then whatever is left, a stale partial frame, is discarded and
        counted (``dropped_bytes``, and one ``comm_errors`` unless already resynchronising).

        Returns:
            Requests completed by the silence; usually empty.
        """
        frames = self._scan(self._buffer, final=True) if self._buffer else []
        if self._buffer:
            self.counters.dropped_bytes += len(self._buffer)
            if not self._resyncing:
                self.counters.comm_errors += 1
            self._buffer = b""
        self._resyncing = False
        return frames

    def _scan(self, buf: bytes, *, final: bool) -> list[Frame]:
        frames: list[Frame] = []
        layouts_of = self._layouts
        counters = self.counters
        size = len(buf)
        off = 0
        base_mode = self._mode | _FINAL if final else self._mode
        while size - off >= _MIN_ADU:
            mode = base_mode | _RESYNCING if self._resyncing else base_mode
            length, is_request = _match(layouts_of[buf[off + 1]], buf, off, size - off, mode)
            if length > 0:
                counters.frames += 1
                self._resyncing = False
                if is_request:
                    frames.append(Frame(buf[off], buf[off + 1 : off + length - 2]))
                off += length
            elif length == _NEED:
                if not self._resyncing:
                    break
                # The head follows an error and cannot be decided yet: the first complete,
                # CRC-valid frame of a known layout (this one under another layout, or a later
                # one) wins, and becomes a trusted boundary.
                start = _lookahead(layouts_of, buf, off, size)
                if start < 0:
                    break
                counters.dropped_bytes += start - off
                off = start
                self._resyncing = False
            else:
                # No layout fits: drop one byte and look for a frame at the next one.
                if not self._resyncing:
                    self._resyncing = True
                    if length == _OVERRUN:
                        counters.overruns += 1
                    else:
                        counters.comm_errors += 1
                counters.dropped_bytes += 1
                off += 1
        self._buffer = buf[off:] if off else buf
        return frames

    def build(self, unit_id: int, pdu: bytes, transaction_id: int = 0) -> bytes:
        """Return the wire bytes of a response: address + PDU + CRC (low byte first).

        Args:
            unit_id: The server address (1..247; 0..255 accepted).
            pdu: Function code + data (1..253 bytes).
            transaction_id: Ignored (RTU has none); accepted so every framer builds alike.

        Returns:
            The ADU to send.

        Raises:
            ValueError: If a value is out of range.
        """
        _check_build_args(unit_id, pdu, transaction_id)
        adu = bytes((unit_id,)) + pdu
        return adu + crc16_bytes(adu)


def rtu_timing(
    baudrate: int, *, bytesize: int = 8, parity: str = "E", stopbits: float = 1
) -> tuple[float, float]:
    """Return the RTU inter-character and inter-frame times (t1.5, t3.5) in seconds.

    A character is 1 start bit + ``bytesize`` data bits + 1 parity bit (unless parity is "N") +
    ``stopbits``. Above 19200 baud the specification fixes t1.5 = 750 us and t3.5 = 1.75 ms.

    Args:
        baudrate: Line speed in bits per second.
        bytesize: Data bits per character (5..8).
        parity: "N", "E", "O", "M" or "S".
        stopbits: 1, 1.5 or 2.

    Returns:
        ``(t1.5, t3.5)``; at 9600 baud 8E1 about (0.00172, 0.00401).

    Raises:
        ValueError: If a parameter is out of range.
    """
    if baudrate <= 0:
        raise ValueError(f"baudrate must be positive, got {baudrate}")
    if not 5 <= bytesize <= 8:
        raise ValueError(f"bytesize must be 5..8, got {bytesize}")
    if parity not in ("N", "E", "O", "M", "S"):
        raise ValueError(f"parity must be one of N, E, O, M, S, got {parity!r}")
    if stopbits not in (1, 1.5, 2):
        raise ValueError(f"stopbits must be 1, 1.5 or 2, got {stopbits}")
    if baudrate > _FAST_BAUDRATE:
        return RTU_FAST_T15, RTU_FAST_T35
    char_time = (1 + bytesize + (parity != "N") + stopbits) / baudrate
    return 1.5 * char_time, 3.5 * char_time
