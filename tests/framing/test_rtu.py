"""RTU framer: golden vectors, shared bus, resynchronisation, silence, custom functions."""

from __future__ import annotations

import random
from typing import Any

import pytest

from trio_modbus.framing import MAX_FRAMED_RTU_ADU, Frame, RTUFramer, RtuSizeRule, crc16_bytes

from ._helpers import TRAILING, feed_bytewise, hexbytes

# Requests (address + PDU + CRC, low byte first). CRC values: Modbus over Serial Line V1.02
# ("02 07 41 12"), MODBUS-NOTES ("01 03 00 00 00 01 84 0A") and the Application Protocol's
# examples addressed to unit 0x11; each checked with a bit-by-bit CRC and an unrelated
# implementation, never with the code under test.
REQUESTS = [
    pytest.param("01 03 0000 0001 840A", id="fc03-notes"),
    pytest.param("02 07 4112", id="fc07-serial-spec"),
    pytest.param("11 01 0013 0025 0E84", id="fc01"),
    pytest.param("11 02 00C4 0016 BAA9", id="fc02"),
    pytest.param("11 03 006B 0003 7687", id="fc03"),
    pytest.param("11 04 0008 0001 B298", id="fc04"),
    pytest.param("11 05 00AC FF00 4E8B", id="fc05"),
    pytest.param("11 06 0001 0003 9A9B", id="fc06"),
    pytest.param("11 08 0000 A537 D81D", id="fc08-echo"),
    pytest.param("11 0B 4C27", id="fc0b"),
    pytest.param("11 0C 0DE5", id="fc0c"),
    pytest.param("11 0F 0013 000A 02 CD01 BF0B", id="fc0f"),
    pytest.param("11 10 0001 0002 04 000A 0102 C6F0", id="fc10"),
    pytest.param("11 11 CDEC", id="fc11"),
    pytest.param("11 14 0E 06 0004 0001 0002 06 0003 0009 0002 F938", id="fc14"),
    pytest.param("11 15 0D 06 0004 0007 0003 06AF 04BE 100D DBC7", id="fc15"),
    pytest.param("11 16 0004 00F2 0025 66E2", id="fc16"),
    pytest.param("11 17 0003 0006 000E 0003 06 00FF 00FF 00FF 4B54", id="fc17"),
    pytest.param("11 18 04DE 0787", id="fc18"),
    pytest.param("11 2B 0E 01 00 B1B4", id="fc2b"),
]

# Responses of another station on a shared bus: recognised and skipped, never returned.
RESPONSES = [
    pytest.param("11 01 05 CD6BB20E1B 45E6", id="fc01"),
    pytest.param("11 03 06 022B 0000 0064 C8BA", id="fc03"),
    pytest.param("11 04 02 000A F8F4", id="fc04"),
    pytest.param("11 07 6D E218", id="fc07"),
    pytest.param("11 0B FFFF 0108 A6E9", id="fc0b"),
    pytest.param("11 0C 08 0000 0108 0121 20 00 5901", id="fc0c"),
    pytest.param("11 0F 0013 000A 2699", id="fc0f"),
    pytest.param("11 10 0001 0002 1298", id="fc10"),
    pytest.param("11 11 03 11 FF 00 EEE8", id="fc11"),
    pytest.param("11 17 0C 00FE 0ACD 0001 0003 000D 00FF 0D75", id="fc17"),
    pytest.param("11 18 0006 0002 01B8 1284 188D", id="fc18"),
    pytest.param(
        "11 2B 0E 01 01 00 00 03 00 04 41434D45 01 02 5831 02 03 302E31 4975", id="fc2b-0e"
    ),
    pytest.param("11 83 02 C134", id="exception"),
]

# Responses whose layout is identical to the request's: they resolve as requests (documented).
SAME_LAYOUT_RESPONSES = [
    pytest.param("11 02 03 ACDB35 2018", id="fc02-3-bytes"),
    pytest.param("11 05 00AC FF00 4E8B", id="fc05-echo"),
    pytest.param("11 14 0C 05 06 0DFE 0020 05 06 33CD 0040 69AD", id="fc14"),
]

REQUEST_0x11_03 = hexbytes("11 03 006B 0003 7687")
FRAME_0x11_03 = Frame(0x11, hexbytes("03 006B 0003"))


def _frame_of(wire: bytes) -> Frame:
    return Frame(wire[0], wire[1:-2])


@pytest.mark.parametrize("wire_hex", REQUESTS)
def test_request_whole(wire_hex: str) -> None:
    wire = hexbytes(wire_hex)
    framer = RTUFramer()
    assert framer.feed(wire) == [_frame_of(wire)]
    assert framer.pending == 0
    assert framer.counters.frames == 1
    assert framer.counters.comm_errors == framer.counters.dropped_bytes == 0


@pytest.mark.parametrize("wire_hex", REQUESTS)
def test_request_byte_at_a_time(wire_hex: str) -> None:
    wire = hexbytes(wire_hex)
    framer = RTUFramer()
    # Returned with its last byte: a request never waits for a later byte or for silence.
    assert feed_bytewise(framer, wire) == [_frame_of(wire)]
    assert framer.pending == 0


@pytest.mark.parametrize("wire_hex", REQUESTS)
def test_request_with_trailing_bytes(wire_hex: str) -> None:
    wire = hexbytes(wire_hex)
    framer = RTUFramer()
    assert framer.feed(wire + TRAILING) == [_frame_of(wire)]
    assert framer.pending == len(TRAILING)
    assert framer.feed(REQUEST_0x11_03[len(TRAILING) :]) == [FRAME_0x11_03]
    assert framer.counters.comm_errors == framer.counters.dropped_bytes == 0


@pytest.mark.parametrize("wire_hex", REQUESTS + RESPONSES)
def test_build(wire_hex: str) -> None:
    wire = hexbytes(wire_hex)
    assert RTUFramer().build(wire[0], wire[1:-2]) == wire
    assert RTUFramer().build(wire[0], wire[1:-2], 1234) == wire  # no transaction id in RTU


@pytest.mark.parametrize("wire_hex", RESPONSES)
def test_response_skipped_whole(wire_hex: str) -> None:
    framer = RTUFramer()
    assert framer.feed(hexbytes(wire_hex)) == []
    # Some responses are recognised at once, others once silence rules out a longer request.
    assert framer.receive_silence() == []
    assert framer.counters.frames == 1
    assert framer.counters.comm_errors == framer.counters.dropped_bytes == 0
    assert framer.pending == 0


@pytest.mark.parametrize("wire_hex", RESPONSES)
def test_response_skipped_byte_at_a_time(wire_hex: str) -> None:
    framer = RTUFramer()
    assert feed_bytewise(framer, hexbytes(wire_hex)) == []
    assert framer.receive_silence() == []
    assert framer.counters.frames == 1
    assert framer.counters.comm_errors == framer.counters.dropped_bytes == 0


@pytest.mark.parametrize("wire_hex", RESPONSES)
def test_response_with_trailing_bytes(wire_hex: str) -> None:
    framer = RTUFramer()
    assert framer.feed(hexbytes(wire_hex) + TRAILING) == []
    assert framer.pending >= len(TRAILING)  # the start of the next request stays buffered
    frames = framer.feed(REQUEST_0x11_03[len(TRAILING) :]) + framer.receive_silence()
    assert frames == [FRAME_0x11_03]
    assert framer.counters.frames == 2
    assert framer.counters.comm_errors == framer.counters.dropped_bytes == 0


@pytest.mark.parametrize("wire_hex", SAME_LAYOUT_RESPONSES)
def test_response_with_the_request_layout_resolves_as_request(wire_hex: str) -> None:
    wire = hexbytes(wire_hex)
    framer = RTUFramer()
    assert framer.feed(wire) == [_frame_of(wire)]
    assert feed_bytewise(RTUFramer(), wire) == [_frame_of(wire)]


def test_shared_bus_request_response_request_in_one_chunk() -> None:
    request5 = hexbytes("05 03 0000 0001") + RTUFramer().build(5, hexbytes("03 0000 0001"))[-2:]
    response5 = RTUFramer().build(5, hexbytes("03 02 002A"))
    request1 = hexbytes("01 03 0000 0001 840A")
    stream = request5 + response5 + request1
    expected = [Frame(5, hexbytes("03 0000 0001")), Frame(1, hexbytes("03 0000 0001"))]
    framer = RTUFramer()
    assert framer.feed(stream) == expected
    assert framer.counters.frames == 3
    assert framer.counters.comm_errors == framer.counters.dropped_bytes == 0
    framer = RTUFramer()
    assert feed_bytewise(framer, stream, single=False) == expected
    assert framer.pending == 0


def test_shared_bus_golden_pair() -> None:
    # Unit 0x11's request and response from the Application Protocol example, then ours.
    stream = (
        hexbytes("11 03 006B 0003 7687")
        + hexbytes("11 03 06 022B 0000 0064 C8BA")
        + hexbytes("01 03 0000 0001 840A")
    )
    framer = RTUFramer()
    assert framer.feed(stream) == [FRAME_0x11_03, Frame(1, hexbytes("03 0000 0001"))]
    assert framer.counters.frames == 3


def test_two_back_to_back_requests_in_one_chunk() -> None:
    first = hexbytes("11 03 006B 0003 7687")
    second = hexbytes("11 10 0001 0002 04 000A 0102 C6F0")
    framer = RTUFramer()
    assert framer.feed(first + second) == [_frame_of(first), _frame_of(second)]
    assert framer.feed(second + first) == [_frame_of(second), _frame_of(first)]
    assert framer.counters.frames == 4
    assert framer.pending == 0


def test_broadcast_and_foreign_addresses_are_returned() -> None:
    framer = RTUFramer()
    for unit in (0, 1, 247, 248, 255):
        wire = framer.build(unit, hexbytes("06 0001 0003"))
        assert framer.feed(wire) == [Frame(unit, hexbytes("06 0001 0003"))]


def test_silence_discards_a_stale_partial_frame() -> None:
    framer = RTUFramer()
    assert framer.feed(REQUEST_0x11_03[:5]) == []
    assert framer.pending == 5
    assert framer.receive_silence() == []
    assert framer.pending == 0
    assert framer.counters.dropped_bytes == 5
    assert framer.counters.comm_errors == 1
    assert framer.feed(REQUEST_0x11_03) == [FRAME_0x11_03]


def test_silence_on_an_empty_buffer_counts_nothing() -> None:
    framer = RTUFramer()
    assert framer.receive_silence() == []
    assert framer.counters == type(framer.counters)()


def test_bad_crc_counts_one_error_and_resynchronises() -> None:
    bad = bytearray(REQUEST_0x11_03)
    bad[-1] ^= 0x01
    framer = RTUFramer()
    assert framer.feed(bytes(bad) + REQUEST_0x11_03) == [FRAME_0x11_03]
    assert framer.counters.comm_errors == 1  # one bad frame, however many bytes were dropped
    assert framer.counters.dropped_bytes == len(bad)
    assert framer.counters.frames == 1


def test_bad_crc_byte_at_a_time() -> None:
    bad = bytearray(REQUEST_0x11_03)
    bad[3] ^= 0x40
    framer = RTUFramer()
    frames = feed_bytewise(framer, bytes(bad) + REQUEST_0x11_03, single=False)
    frames += framer.receive_silence()
    assert frames == [FRAME_0x11_03]
    assert framer.counters.comm_errors == 1
    assert framer.counters.dropped_bytes == len(bad)


def test_two_bad_frames_separated_by_a_good_one_count_twice() -> None:
    bad = bytearray(REQUEST_0x11_03)
    bad[-2] ^= 0xFF
    framer = RTUFramer()
    stream = bytes(bad) + REQUEST_0x11_03 + bytes(bad) + REQUEST_0x11_03
    assert framer.feed(stream) == [FRAME_0x11_03, FRAME_0x11_03]
    assert framer.counters.comm_errors == 2


def test_noise_before_a_request_is_dropped() -> None:
    framer = RTUFramer()
    assert framer.feed(hexbytes("FF FF") + REQUEST_0x11_03) == [FRAME_0x11_03]
    assert framer.counters.dropped_bytes == 2
    assert framer.counters.comm_errors == 1


def test_silence_completes_a_frame_hidden_behind_noise() -> None:
    # "05 03 FA" looks like the start of a 255-byte read response: the framer waits for it;
    # the silence proves it wrong, and the request behind it is found and returned.
    framer = RTUFramer()
    assert framer.feed(hexbytes("05 03 FA") + REQUEST_0x11_03) == []
    assert framer.receive_silence() == [FRAME_0x11_03]
    assert framer.counters.dropped_bytes == 3
    assert framer.counters.comm_errors == 1
    assert framer.pending == 0


def test_unknown_function_code_found_by_crc() -> None:
    framer = RTUFramer()
    wire = framer.build(0x11, hexbytes("41 010203"))
    assert feed_bytewise(framer, wire) == [Frame(0x11, hexbytes("41 010203"))]
    # Followed by another request in the same chunk: the shortest CRC match ends the first.
    assert framer.feed(wire + REQUEST_0x11_03) == [_frame_of(wire), FRAME_0x11_03]
    assert framer.feed(framer.build(1, b"\x41")) == [Frame(1, b"\x41")]  # 4 bytes, the minimum


def test_fc08_return_query_data_of_any_length() -> None:
    framer = RTUFramer()
    for data in ("", "A5", "A537", "0102030405060708"):
        pdu = hexbytes("08 0000" + data)
        wire = framer.build(0x11, pdu)
        assert framer.feed(wire + REQUEST_0x11_03) == [Frame(0x11, pdu), FRAME_0x11_03]
    assert framer.counters.comm_errors == 0


def _echo_with_an_inner_crc_match(seed: int) -> bytes:
    """An 08/0000 echo frame whose data holds an accidental CRC match (a shorter "frame")."""
    rng = random.Random(seed)
    while True:
        wire = RTUFramer().build(0x11, hexbytes("08 0000") + rng.randbytes(rng.randint(20, 240)))
        crc = 0xFFFF
        for length, byte in enumerate(wire[:-2], 1):
            crc = _crc_step(crc, byte)
            if not crc and length >= 6:
                return wire


def _crc_step(crc: int, byte: int) -> int:
    crc ^= byte
    for _ in range(8):
        crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


@pytest.mark.parametrize("seed", range(3))
def test_echo_ends_at_the_end_of_the_bytes_received_not_at_an_inner_crc_match(seed: int) -> None:
    # RTU over TCP: no silence, but a client sends its frame in one piece.
    wire = _echo_with_an_inner_crc_match(seed)
    framer = RTUFramer()
    assert framer.feed(wire) == [_frame_of(wire)]
    assert framer.counters.comm_errors == 0
    # Followed by another request in the same chunk, only the CRC can tell: the first match.
    echo = framer.build(0x11, hexbytes("08 0000 0102 0304"))
    assert framer.feed(echo + REQUEST_0x11_03) == [_frame_of(echo), FRAME_0x11_03]


@pytest.mark.parametrize("seed", range(3))
def test_on_a_serial_line_the_silence_ends_an_echo(seed: int) -> None:
    wire = _echo_with_an_inner_crc_match(seed)
    framer = RTUFramer(silence_delimits=True)
    for way in ("whole", "bytewise", "halves"):
        if way == "whole":
            got = framer.feed(wire)
        elif way == "bytewise":
            got = feed_bytewise(framer, wire, single=False)
        else:
            got = framer.feed(wire[: len(wire) // 2]) + framer.feed(wire[len(wire) // 2 :])
        assert got == [], way  # no length rule: the frame is complete only at the silence
        assert framer.receive_silence() == [_frame_of(wire)], way
    assert framer.counters.comm_errors == 0
    assert framer.counters.frames == 3
    # Frames with a length rule do not wait for the silence.
    assert framer.feed(REQUEST_0x11_03) == [FRAME_0x11_03]


def test_on_a_serial_line_bytes_after_an_echo_without_silence_still_part_by_crc() -> None:
    framer = RTUFramer(silence_delimits=True)
    echo = framer.build(0x11, hexbytes("08 0000 0102 0304"))
    assert framer.feed(echo + REQUEST_0x11_03) == []
    assert framer.receive_silence() == [_frame_of(echo), FRAME_0x11_03]


@pytest.mark.parametrize(
    "pdu",
    [
        pytest.param(hexbytes("10 0000 007C F8") + bytes(248), id="fc10-124-registers"),
        pytest.param(hexbytes("17 0000 0001 0000 007A F4") + bytes(244), id="fc17-writing-122"),
        pytest.param(hexbytes("08 0000") + bytes(257), id="fc08-echo-260"),
    ],
)
@pytest.mark.parametrize("silence_delimits", [False, True])
def test_a_pdu_a_little_past_the_limit_is_delivered(pdu: bytes, silence_delimits: bool) -> None:
    # The codec answers it with exception 03 (MB 6.12: quantity 1..123).
    framer = RTUFramer(silence_delimits=silence_delimits)
    adu = bytes((1,)) + pdu
    adu += crc16_bytes(adu)
    assert len(adu) <= MAX_FRAMED_RTU_ADU
    got = feed_bytewise(framer, adu, single=False) + framer.receive_silence()
    assert got == [Frame(1, pdu)]
    assert framer.counters.comm_errors == framer.counters.overruns == 0


def test_a_byte_count_past_the_framed_limit_is_not_a_frame() -> None:
    # 0x10 with byte count 255: a 264-byte ADU, one past what any framer takes.
    framer = RTUFramer()
    adu = hexbytes("01 10 0000 007F FF") + bytes(255)
    adu += crc16_bytes(adu)
    assert framer.feed(adu) == []
    assert framer.counters.comm_errors == 1
    assert framer.pending < MAX_FRAMED_RTU_ADU
    assert framer.feed(REQUEST_0x11_03) == [FRAME_0x11_03]


def test_fc2b_other_mei_type_found_by_crc() -> None:
    framer = RTUFramer()
    pdu = hexbytes("2B 0D 01020304")  # CANopen general reference: no length rule
    assert framer.feed(framer.build(3, pdu) + REQUEST_0x11_03) == [Frame(3, pdu), FRAME_0x11_03]


def test_largest_frame() -> None:
    framer = RTUFramer()
    pdu = hexbytes("10 0000 0078 F0") + bytes(240)  # 246-byte PDU: 249-byte ADU
    assert framer.feed(framer.build(1, pdu)) == [Frame(1, pdu)]
    pdu = hexbytes("41") + bytes(252)  # 253-byte unknown-function PDU: 256-byte ADU
    assert feed_bytewise(framer, framer.build(1, pdu)) == [Frame(1, pdu)]


def test_custom_function_frame_size() -> None:
    framer = RTUFramer()
    framer.register_function(0x41, frame_size=6)
    wire = framer.build(2, hexbytes("41 ABCD"))
    assert feed_bytewise(framer, wire) == [Frame(2, hexbytes("41 ABCD"))]
    assert framer.feed(wire + REQUEST_0x11_03) == [_frame_of(wire), FRAME_0x11_03]


def test_custom_function_byte_count_pos() -> None:
    framer = RTUFramer(custom_sizes={0x42: RtuSizeRule(byte_count_pos=2)})
    wire = framer.build(2, hexbytes("42 03 AABBCC"))
    assert len(wire) == 3 + 2 + 3  # adu[2] + 2 + 3
    assert feed_bytewise(framer, wire) == [Frame(2, hexbytes("42 03 AABBCC"))]


def test_custom_function_with_a_response_layout() -> None:
    framer = RTUFramer()
    framer.register_function(0x43, frame_size=4, response=RtuSizeRule(byte_count_pos=2))
    request = framer.build(7, b"\x43")
    response = framer.build(7, hexbytes("43 02 BEEF"))
    assert framer.feed(request + response + request) == [Frame(7, b"\x43")] * 2
    assert framer.counters.frames == 3
    assert framer.counters.comm_errors == 0


def test_custom_rule_without_sizes_searches_by_crc() -> None:
    framer = RTUFramer(custom_sizes={0x44: RtuSizeRule()})
    wire = framer.build(7, hexbytes("44 0102"))
    assert framer.feed(wire + REQUEST_0x11_03) == [_frame_of(wire), FRAME_0x11_03]


def test_custom_rule_wrong_size_drops_the_frame() -> None:
    framer = RTUFramer()
    framer.register_function(0x45, frame_size=5)
    wire = framer.build(7, hexbytes("45 0102"))  # 6 bytes, the rule says 5
    assert framer.feed(wire + REQUEST_0x11_03) == [FRAME_0x11_03]
    assert framer.counters.comm_errors == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"function_code": 0},
        {"function_code": 0x80, "frame_size": 4},
        {"function_code": 0x41, "frame_size": 3},
        {"function_code": 0x41, "frame_size": 257},
        {"function_code": 0x41, "byte_count_pos": 1},
        {"function_code": 0x41, "byte_count_pos": 254},
        {"function_code": 0x41, "frame_size": 6, "byte_count_pos": 2},
        {"function_code": 0x41, "frame_size": -1},
    ],
)
def test_register_function_rejects_bad_rules(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RTUFramer().register_function(**kwargs)


def test_custom_sizes_reject_bad_function_code() -> None:
    with pytest.raises(ValueError):
        RTUFramer(custom_sizes={200: RtuSizeRule(frame_size=4)})


def test_build_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        RTUFramer().build(256, b"\x03")
    with pytest.raises(ValueError):
        RTUFramer().build(1, b"")
    with pytest.raises(ValueError):
        RTUFramer().build(1, bytes(254))


def test_reset_forgets_the_buffer() -> None:
    framer = RTUFramer()
    framer.feed(REQUEST_0x11_03[:4])
    framer.reset()
    assert framer.pending == 0
    assert framer.feed(REQUEST_0x11_03) == [FRAME_0x11_03]
    assert framer.counters.dropped_bytes == 0


def _has_crc_match(data: bytes) -> bool:
    """Whether any slice of 4..263 bytes of ``data`` ends with its own CRC (bit by bit)."""
    for start in range(len(data)):
        crc = 0xFFFF
        for length, byte in enumerate(data[start : start + MAX_FRAMED_RTU_ADU], 1):
            crc ^= byte
            for _ in range(8):
                crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
            if not crc and length >= 4:
                return True
    return False


def test_overrun_when_263_bytes_hold_no_frame_end() -> None:
    rng = random.Random(7)
    while True:
        noise = b"\x01\x41" + rng.randbytes(298)  # unknown function code: found by CRC only
        if not _has_crc_match(noise):
            break
    framer = RTUFramer()
    assert framer.feed(noise[:262]) == []
    assert framer.pending == 262  # still waiting for a CRC match
    assert framer.feed(noise[262:]) == []
    assert framer.counters.overruns == 1
    assert framer.counters.comm_errors == 0
    assert framer.pending < MAX_FRAMED_RTU_ADU
    assert framer.receive_silence() == []
    assert framer.counters.dropped_bytes == len(noise)
    assert framer.counters.overruns == 1
    assert framer.counters.comm_errors == 0  # the same episode


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_never_crash_and_stay_bounded(seed: int) -> None:
    rng = random.Random(seed)
    data = rng.randbytes(10_000)
    framer = RTUFramer()
    framer.feed(data)
    assert framer.pending < MAX_FRAMED_RTU_ADU
    pos = 0
    framer = RTUFramer()
    while pos < len(data):
        step = rng.randint(1, 40)
        framer.feed(data[pos : pos + step])
        pos += step
        assert framer.pending < MAX_FRAMED_RTU_ADU
        if rng.random() < 0.05:
            framer.receive_silence()
            assert framer.pending == 0
    framer.receive_silence()
    counters = framer.counters
    assert counters.comm_errors + counters.overruns <= counters.dropped_bytes <= len(data)


def test_feed_accepts_bytearray_and_does_not_keep_it() -> None:
    framer = RTUFramer()
    data = bytearray(REQUEST_0x11_03[:5])
    assert framer.feed(data) == []
    data[:] = bytes(5)
    assert framer.feed(REQUEST_0x11_03[5:]) == [FRAME_0x11_03]


def test_resynchronising_does_not_wait_for_a_noise_byte_read_as_a_long_frame() -> None:
    bad = bytearray(REQUEST_0x11_03)
    bad[-1] ^= 0x01
    # After the bad frame, "05 03 FA" reads as the start of a 255-byte response; the complete
    # CRC-valid request behind it wins without waiting for silence.
    stream = bytes(bad) + hexbytes("05 03 FA") + REQUEST_0x11_03
    for way in ("whole", "bytewise"):
        framer = RTUFramer()
        if way == "whole":
            assert framer.feed(stream) == [FRAME_0x11_03]
        else:
            assert feed_bytewise(framer, stream, single=False) == [FRAME_0x11_03]
        assert framer.pending == 0
        assert framer.counters.comm_errors == 1
        assert framer.counters.dropped_bytes == len(bad) + 3


def test_unknown_function_directly_after_noise_is_lost_until_silence() -> None:
    bad = bytearray(REQUEST_0x11_03)
    bad[-1] ^= 0x01
    unknown = RTUFramer().build(0x11, hexbytes("41 0102"))
    framer = RTUFramer()
    assert framer.feed(bytes(bad) + unknown + REQUEST_0x11_03) == [FRAME_0x11_03]
    assert framer.counters.dropped_bytes == len(bad) + len(unknown)
    # After silence the boundary is trusted again and the same frame is found by CRC.
    framer.receive_silence()
    assert framer.feed(unknown) == [_frame_of(unknown)]


@pytest.mark.parametrize("seed", range(3))
def test_an_echo_hiding_a_crc_match_then_a_request_in_one_chunk_part_where_a_frame_follows(
    seed: int,
) -> None:
    # Without silence and with more bytes after the echo, the match that a complete frame
    # follows is the echo's end; the inner match is followed by junk.
    wire = _echo_with_an_inner_crc_match(seed)
    framer = RTUFramer()
    assert framer.feed(wire + REQUEST_0x11_03) == [_frame_of(wire), FRAME_0x11_03]
    # Two such echoes back to back: a frame without a length rule counts as following.
    assert framer.feed(wire + wire + REQUEST_0x11_03) == [_frame_of(wire)] * 2 + [FRAME_0x11_03]
    assert framer.counters.comm_errors == 0
