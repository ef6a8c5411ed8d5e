"""Limits at the boundary and one past it, address ranges (02) and the order of the checks.

Every device here has 100 entries in each block: protocol addresses 0..99 (zero_mode=False,
block addresses 1..100). The spec's own illustration (section 7, code 02): a device with 100
registers answers start 96 quantity 4, and refuses quantity 5 with 02.
"""

from __future__ import annotations

import pytest

from trio_modbus.datastore import (
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusSparseDataBlock,
)

from ._helpers import ask, block, device, h, service

# -- every function code: truncated and over-long, end to end ---------------------------------

VALID_REQUESTS = [
    "01 00 00 00 01",
    "02 00 00 00 01",
    "03 00 00 00 01",
    "04 00 00 00 01",
    "05 00 00 FF 00",
    "06 00 00 00 01",
    "07",
    "08 00 0A 00 00",
    "0B",
    "0C",
    "0F 00 00 00 01 01 01",
    "10 00 00 00 01 02 00 01",
    "11",
    "14 07 06 00 01 00 00 00 01",
    "15 09 06 00 01 00 00 00 01 00 01",
    "16 00 00 FF FF 00 00",
    "17 00 00 00 01 00 00 00 01 02 00 01",
    "18 00 00",
    "2B 0E 01 00",
]


@pytest.mark.parametrize("request_hex", VALID_REQUESTS, ids=lambda r: r[:2])
async def test_truncated_and_over_long_requests_end_to_end(request_hex: str) -> None:
    svc = service(device(file_records={1: 10}, fifo_queues={0: [1]}))
    pdu = h(request_hex)
    exception = bytes((pdu[0] | 0x80, 0x03))
    reply = await ask(svc, pdu)
    assert reply is not None and reply[0] == pdu[0], reply  # the valid request is served
    if len(pdu) > 1:
        assert await ask(svc, pdu[:-1]) == exception
    assert await ask(svc, pdu + h("00")) == exception


# -- 01 / 02 / 03 / 04 reads -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fc", "ok_reply"),
    [
        # 4 zero bits: byte count 1, data 00; 4 zero registers: byte count 8.
        ("01", "01 01 00"),
        ("02", "02 01 00"),
        ("03", "03 08 00 00 00 00 00 00 00 00"),
        ("04", "04 08 00 00 00 00 00 00 00 00"),
    ],
)
async def test_read_address_range(fc: str, ok_reply: str) -> None:
    svc = service()
    exception = h(f"{int(fc, 16) | 0x80:02X} 02")
    assert await ask(svc, f"{fc} 00 60 00 04") == h(ok_reply)  # 96..99
    assert await ask(svc, f"{fc} 00 60 00 05") == exception  # 96..100: one past the end
    assert await ask(svc, f"{fc} 00 63 00 01") is not None  # 99
    assert await ask(svc, f"{fc} 00 63 00 01") != exception
    assert await ask(svc, f"{fc} 00 64 00 01") == exception  # 100
    assert await ask(svc, f"{fc} FF FF 00 01") == exception


@pytest.mark.parametrize("fc", ["01", "02"])
async def test_read_bits_quantity_limits_end_to_end(fc: str) -> None:
    svc = service(device(co=block(2000), di=block(2000)))
    n = int(fc, 16)
    reply = await ask(svc, f"{fc} 00 00 07 D0")  # 2000
    assert reply == bytes((n, 250)) + bytes(250)
    assert await ask(svc, f"{fc} 00 00 07 D1") == bytes((n | 0x80, 0x03))  # 2001
    assert await ask(svc, f"{fc} 00 00 00 00") == bytes((n | 0x80, 0x03))  # 0
    assert await ask(svc, f"{fc} 00 00 00 01") == bytes((n, 1, 0))  # 1


@pytest.mark.parametrize("fc", ["03", "04"])
async def test_read_registers_quantity_limits_end_to_end(fc: str) -> None:
    svc = service(device(hr=block(200), ir=block(200)))
    n = int(fc, 16)
    assert await ask(svc, f"{fc} 00 00 00 7D") == bytes((n, 250)) + bytes(250)  # 125
    assert await ask(svc, f"{fc} 00 00 00 7E") == bytes((n | 0x80, 0x03))  # 126
    assert await ask(svc, f"{fc} 00 00 00 00") == bytes((n | 0x80, 0x03))  # 0


@pytest.mark.parametrize("fc", ["01", "02", "03", "04"])
async def test_quantity_is_checked_before_the_address(fc: str) -> None:
    # Both wrong: quantity too large and start address outside the device → 03, not 02.
    svc = service()
    assert await ask(svc, f"{fc} 00 64 FF FF") == bytes((int(fc, 16) | 0x80, 0x03))
    assert await ask(svc, f"{fc} 00 64 00 00") == bytes((int(fc, 16) | 0x80, 0x03))


async def test_function_is_checked_before_everything() -> None:
    svc = service()
    assert await ask(svc, "09 00 64 FF FF") == h("89 01")
    assert await ask(svc, "2B 0D 00 64 FF FF") == h("AB 01")


# -- 05 / 06 / 0F / 10 writes --------------------------------------------------------------------


async def test_write_single_coil_address_range_and_value() -> None:
    svc = service()
    assert await ask(svc, "05 00 63 FF 00") == h("05 00 63 FF 00")  # 99, the last
    assert await ask(svc, "05 00 64 FF 00") == h("85 02")  # 100, one past
    assert await ask(svc, "05 00 64 12 34") == h("85 03")  # bad value wins over bad address
    assert await ask(svc, "05 00 00 FF 01") == h("85 03")


async def test_write_single_register_address_range() -> None:
    svc = service()
    assert await ask(svc, "06 00 63 FF FF") == h("06 00 63 FF FF")
    assert await ask(svc, "06 00 64 00 01") == h("86 02")
    assert await ask(svc, "03 00 63 00 01") == h("03 02 FF FF")


async def test_write_multiple_coils_address_range() -> None:
    svc = service()
    assert await ask(svc, "0F 00 60 00 04 01 0F") == h("0F 00 60 00 04")
    assert await ask(svc, "0F 00 60 00 05 01 1F") == h("8F 02")
    assert await ask(svc, "01 00 5E 00 06") == h("01 01 3C")  # 94..99: 0 0 1 1 1 1


async def test_write_multiple_coils_quantity_limits_end_to_end() -> None:
    svc = service(device(co=block(2000)))
    data = bytes([0xFF] * 246)
    assert await ask(svc, h("0F 00 00 07 B0 F6") + data) == h("0F 00 00 07 B0")  # 1968
    assert await ask(svc, h("0F 00 00 07 B1 F7") + data + h("01")) == h("8F 03")  # 1969
    assert await ask(svc, "0F 00 00 00 00 00") == h("8F 03")  # 0
    assert await ask(svc, "0F 00 00 00 01 01 01") == h("0F 00 00 00 01")  # 1


async def test_write_multiple_registers_address_range() -> None:
    svc = service()
    assert await ask(svc, "10 00 62 00 02 04 00 01 00 02") == h("10 00 62 00 02")
    assert await ask(svc, "10 00 63 00 02 04 00 01 00 02") == h("90 02")
    # The refused write changed nothing.
    assert await ask(svc, "03 00 62 00 02") == h("03 04 00 01 00 02")


async def test_write_multiple_registers_quantity_limits_end_to_end() -> None:
    svc = service(device(hr=block(200)))
    assert await ask(svc, h("10 00 00 00 7B F6") + bytes(246)) == h("10 00 00 00 7B")  # 123
    assert await ask(svc, h("10 00 00 00 7C F8") + bytes(248)) == h("90 03")  # 124
    assert await ask(svc, "10 00 00 00 00 00") == h("90 03")  # 0


async def test_lying_byte_count_is_answered_and_the_service_keeps_serving() -> None:
    svc = service()
    assert await ask(svc, "10 00 00 00 02 06 00 01 00 02") == h("90 03")
    assert await ask(svc, "0F 00 00 00 0A 01 FF") == h("8F 03")
    assert await ask(svc, "17 00 00 00 01 00 00 00 01 04 00 01") == h("97 03")
    assert await ask(svc, "03 00 00 00 01") == h("03 02 00 00")


# -- 16 mask write, 17 read/write --------------------------------------------------------------


async def test_mask_write_address_range() -> None:
    svc = service()
    assert await ask(svc, "16 00 63 00 00 FF FF") == h("16 00 63 00 00 FF FF")
    assert await ask(svc, "16 00 64 00 00 FF FF") == h("96 02")


@pytest.mark.parametrize(
    ("current", "and_mask", "or_mask", "result"),
    [
        (0x0012, 0x00F2, 0x0025, 0x0017),  # the spec's example
        (0xABCD, 0xFFFF, 0x0000, 0xABCD),  # AND all ones: unchanged
        (0xABCD, 0xFFFF, 0x1234, 0xABCD),  # ... whatever the OR mask
        (0xABCD, 0x0000, 0x1234, 0x1234),  # AND zero: the OR mask replaces the value
        (0xABCD, 0xFF00, 0x00FF, 0xABFF),
        (0xFFFF, 0x0F0F, 0x0000, 0x0F0F),
    ],
)
async def test_mask_write_formula(current: int, and_mask: int, or_mask: int, result: int) -> None:
    svc = service(device(hr=block(100, {1: current})))
    request = h("16 00 00") + and_mask.to_bytes(2, "big") + or_mask.to_bytes(2, "big")
    assert await ask(svc, request) == request
    assert await ask(svc, "03 00 00 00 01") == h("03 02") + result.to_bytes(2, "big")


async def test_read_write_writes_before_reading_overlapping_ranges() -> None:
    svc = service(device(hr=block(100, {1: 1, 2: 2, 3: 3, 4: 4, 5: 5})))
    # Read 0..4, write 2..3 := AAAA BBBB: the reply shows the new values.
    assert await ask(svc, "17 00 00 00 05 00 02 00 02 04 AA AA BB BB") == h(
        "17 0A 00 01 00 02 AA AA BB BB 00 05"
    )


async def test_read_write_same_range() -> None:
    svc = service()
    assert await ask(svc, "17 00 10 00 01 00 10 00 01 02 12 34") == h("17 02 12 34")


async def test_read_write_quantity_limits_end_to_end() -> None:
    svc = service(device(hr=block(300)))
    write1 = "00 C8 00 01 02 00 07"  # register 200 := 7, outside every read below
    assert await ask(svc, f"17 00 00 00 7D {write1}") == h("17 FA") + bytes(250)  # read 125
    assert await ask(svc, f"17 00 00 00 7E {write1}") == h("97 03")  # read 126
    assert await ask(svc, f"17 00 00 00 00 {write1}") == h("97 03")  # read 0
    head = h("17 00 00 00 01 00 64")
    assert await ask(svc, head + h("00 79 F2") + bytes(242)) == h("17 02 00 00")  # write 121
    assert await ask(svc, head + h("00 7A F4") + bytes(244)) == h("97 03")  # write 122
    assert await ask(svc, head + h("00 00 00")) == h("97 03")  # write 0


async def test_read_write_address_ranges() -> None:
    svc = service(device(hr=block(100, {1: 7})))
    # read range one past the end
    assert await ask(svc, "17 00 60 00 05 00 00 00 01 02 00 09") == h("97 02")
    # write range one past the end
    assert await ask(svc, "17 00 00 00 01 00 63 00 02 04 00 09 00 09") == h("97 02")
    # neither refused request wrote anything
    assert await ask(svc, "03 00 00 00 01") == h("03 02 00 07")
    assert await ask(svc, "03 00 62 00 02") == h("03 04 00 00 00 00")
    # both ranges exactly at the end
    assert await ask(svc, "17 00 60 00 04 00 63 00 01 02 00 09") == h(
        "17 08 00 00 00 00 00 00 00 09"
    )


# -- 14 / 15 file records -----------------------------------------------------------------------


def file_device() -> ModbusDeviceContext:
    return device(file_records={1: list(range(10)), 2: 0x2710})


async def test_read_file_record_ranges() -> None:
    svc = service(file_device())
    assert await ask(svc, "14 07 06 00 01 00 08 00 02") == h("14 06 05 06 00 08 00 09")
    assert await ask(svc, "14 07 06 00 01 00 09 00 02") == h("94 02")  # one past file 1
    assert await ask(svc, "14 07 06 00 03 00 00 00 01") == h("94 02")  # no file 3
    # The last record of a full file (9999) and one past it.
    assert await ask(svc, "14 07 06 00 02 27 0F 00 01") == h("14 04 03 06 00 00")
    assert await ask(svc, "14 07 06 00 02 27 10 00 01") == h("94 02")
    assert await ask(svc, "14 07 05 00 01 00 00 00 01") == h("94 02")  # reference type 5
    assert await ask(svc, "14 07 06 00 01 00 00 00 7D") == h("94 03")  # reply > 253 bytes


async def test_write_file_record_is_all_or_nothing() -> None:
    svc = service(file_device())
    # The second sub-request runs past the end of file 1: 02, and the first is not written.
    request = "15 14 06 00 01 00 00 00 01 AB CD 06 00 01 00 09 00 02 11 11 22 22"
    assert await ask(svc, request) == h("95 02")
    assert await ask(svc, "14 07 06 00 01 00 00 00 01") == h("14 04 03 06 00 00")
    assert await ask(svc, "15 09 06 00 03 00 00 00 01 00 01") == h("95 02")  # no file 3


async def test_file_records_are_not_offset_by_zero_mode() -> None:
    for zero_mode in (False, True):
        svc = service(device(zero_mode=zero_mode, file_records={1: [5, 6]}))
        assert await ask(svc, "14 07 06 00 01 00 00 00 01") == h("14 04 03 06 00 05")


# -- 18 FIFO -------------------------------------------------------------------------------------


async def test_read_fifo_queue_count_limit() -> None:
    values = list(range(0x100, 0x100 + 32))
    svc = service(device(fifo_queues={1: values[:31], 2: values, 3: []}))
    expected = h("18 00 40 00 1F") + b"".join(v.to_bytes(2, "big") for v in values[:31])
    assert await ask(svc, "18 00 01") == expected  # 31 values: byte count 2 + 62 = 0x40
    assert await ask(svc, "18 00 02") == h("98 03")  # 32 values
    assert await ask(svc, "18 00 03") == h("18 00 02 00 00")  # empty queue
    assert await ask(svc, "18 00 04") == h("98 02")  # no queue at this pointer address


async def test_read_fifo_queue_does_not_remove_values() -> None:
    svc = service(device(fifo_queues={7: [1, 2]}))
    assert await ask(svc, "18 00 07") == h("18 00 06 00 02 00 01 00 02")
    assert await ask(svc, "18 00 07") == h("18 00 06 00 02 00 01 00 02")


# -- addressing modes --------------------------------------------------------------------------


async def test_zero_mode_false_maps_protocol_address_n_to_block_address_n_plus_1() -> None:
    hr = ModbusSequentialDataBlock(0, list(range(10, 20)))  # block addresses 0..9
    svc = service(ModbusDeviceContext(hr=hr))
    assert await ask(svc, "03 00 00 00 02") == h("03 04 00 0B 00 0C")
    assert await ask(svc, "03 00 08 00 01") == h("03 02 00 13")
    assert await ask(svc, "03 00 09 00 01") == h("83 02")
    assert await ask(svc, "06 00 00 00 63") == h("06 00 00 00 63")
    assert hr.values[:2] == [10, 0x63]


async def test_zero_mode_true_maps_protocol_address_n_to_block_address_n() -> None:
    hr = ModbusSequentialDataBlock(0, list(range(10, 20)))
    svc = service(ModbusDeviceContext(hr=hr, zero_mode=True))
    assert await ask(svc, "03 00 00 00 02") == h("03 04 00 0A 00 0B")
    assert await ask(svc, "03 00 09 00 01") == h("03 02 00 13")
    assert await ask(svc, "03 00 0A 00 01") == h("83 02")


async def test_sparse_blocks() -> None:
    ro = ModbusSparseDataBlock({1: 10, 2: 20, 10: 30}, mutable=False)
    svc = service(device(hr=ro))
    assert await ask(svc, "03 00 00 00 02") == h("03 04 00 0A 00 14")
    assert await ask(svc, "03 00 00 00 03") == h("83 02")  # block address 3 is missing
    assert await ask(svc, "06 00 04 00 01") == h("86 02")  # immutable: no new address
    assert await ask(svc, "10 00 01 00 02 04 00 01 00 02") == h("90 02")
    assert ro.values == {1: 10, 2: 20, 10: 30}
    rw = ModbusSparseDataBlock({1: 10}, mutable=True)
    svc = service(device(hr=rw))
    assert await ask(svc, "06 00 04 00 01") == h("06 00 04 00 01")
    assert await ask(svc, "03 00 04 00 01") == h("03 02 00 01")
