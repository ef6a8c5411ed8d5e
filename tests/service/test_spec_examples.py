"""The request/response examples of the Modbus Application Protocol V1.1b3, section 6, end to end.

Each test sets the datastore so that the spec's example reply comes out, sends the spec's
request bytes through ``DatastoreService.process`` and compares with the spec's reply bytes.
Devices use ``zero_mode=False`` (pymodbus's default): the spec's "coil 20" is protocol address
19 (0x13) and block address 20.
"""

from __future__ import annotations

from trio_modbus.datastore import ModbusDeviceContext, ModbusDeviceIdentification

from ._helpers import ask as ask_
from ._helpers import block, device, h, service

# 6.1: coils 27..20 = CD, 35..28 = 6B, 38..36 = 05 (MSB printed first).
COILS = {20 + i: 0xCD >> i & 1 for i in range(8)}
COILS |= {28 + i: 0x6B >> i & 1 for i in range(8)}
COILS |= {36 + i: 0x05 >> i & 1 for i in range(3)}
# 6.2: discrete inputs 204..197 = AC, 212..205 = DB, 218..213 = 35.
INPUTS = {197 + i: 0xAC >> i & 1 for i in range(8)}
INPUTS |= {205 + i: 0xDB >> i & 1 for i in range(8)}
INPUTS |= {213 + i: 0x35 >> i & 1 for i in range(6)}


def spec_device() -> ModbusDeviceContext:
    return device(
        co=block(300, COILS),
        di=block(300, INPUTS),
        # 6.3: registers 108..110 = 555, 0, 100.
        hr=block(300, {108: 0x022B, 109: 0x0000, 110: 0x0064}),
        # 6.4: input register 9 = 10.
        ir=block(300, {9: 0x000A}),
        # 6.14: file 4 records 1..2, file 3 records 9..10.
        file_records={4: [0, 0x0DFE, 0x0020] + [0] * 7, 3: [0] * 9 + [0x33CD, 0x0040]},
        # 6.18: the FIFO queue at pointer address 0x04DE holds two values.
        fifo_queues={0x04DE: [0x01B8, 0x1284]},
    )


async def ask(request: str, dev: ModbusDeviceContext | None = None) -> bytes | None:
    return await ask_(service(dev if dev is not None else spec_device()), request)


async def test_6_1_read_coils() -> None:
    assert await ask("01 00 13 00 13") == h("01 03 CD 6B 05")


async def test_6_2_read_discrete_inputs() -> None:
    assert await ask("02 00 C4 00 16") == h("02 03 AC DB 35")


async def test_6_3_read_holding_registers() -> None:
    assert await ask("03 00 6B 00 03") == h("03 06 02 2B 00 00 00 64")


async def test_6_4_read_input_registers() -> None:
    assert await ask("04 00 08 00 01") == h("04 02 00 0A")


async def test_6_5_write_single_coil() -> None:
    svc = service(spec_device())
    assert await ask_(svc, "01 00 AC 00 01") == h("01 01 00")
    assert await ask_(svc, "05 00 AC FF 00") == h("05 00 AC FF 00")
    assert await ask_(svc, "01 00 AC 00 01") == h("01 01 01")
    assert await ask_(svc, "05 00 AC 00 00") == h("05 00 AC 00 00")
    assert await ask_(svc, "01 00 AC 00 01") == h("01 01 00")


async def test_6_6_write_single_register() -> None:
    svc = service(spec_device())
    assert await ask_(svc, "06 00 01 00 03") == h("06 00 01 00 03")
    assert await ask_(svc, "03 00 01 00 01") == h("03 02 00 03")


async def test_6_7_read_exception_status() -> None:
    svc = service(spec_device())
    svc.diagnostics.exception_status = 0x6D
    assert await ask_(svc, "07") == h("07 6D")


async def test_6_8_diagnostics_return_query_data() -> None:
    assert await ask("08 00 00 A5 37") == h("08 00 00 A5 37")


async def test_6_9_get_comm_event_counter() -> None:
    # The spec's example shows status FFFF (a program command still running); this server is
    # never busy that way, so its status word is always 0000.
    svc = service(spec_device())
    svc.diagnostics.event_count = 0x0108
    assert await ask_(svc, "0B") == h("0B 00 00 01 08")


async def test_6_10_get_comm_event_log() -> None:
    svc = service(spec_device())
    diag = svc.diagnostics
    diag.event_count = 0x0108
    diag.bus_message_count = 0x0121
    diag.add_event(0x00)
    diag.add_event(0x20)
    # The log also holds the receive event (80) of this very 0C request, logged when it
    # arrived, before the reply was built; the spec's example (events 20 00) predates it.
    assert await ask_(svc, "0C") == h("0C 09 00 00 01 08 01 21 80 20 00")


async def test_6_11_write_multiple_coils() -> None:
    svc = service(spec_device())
    assert await ask_(svc, "0F 00 13 00 0A 02 CD 01") == h("0F 00 13 00 0A")
    # Coils 20..29 now read back as written; coil 30 kept its value (0).
    assert await ask_(svc, "01 00 13 00 0B") == h("01 02 CD 01")


async def test_6_12_write_multiple_registers() -> None:
    svc = service(spec_device())
    assert await ask_(svc, "10 00 01 00 02 04 00 0A 01 02") == h("10 00 01 00 02")
    assert await ask_(svc, "03 00 01 00 02") == h("03 04 00 0A 01 02")


async def test_6_13_report_server_id() -> None:
    identity = ModbusDeviceIdentification(
        info_name={"VendorName": "Acme", "ProductCode": "AC-1", "MajorMinorRevision": "1.0"}
    )
    svc = service(spec_device(), identity=identity)
    # Byte count, server id (device specific: vendor-product-revision, as pymodbus), run
    # indicator FF (ON).
    assert await ask_(svc, "11") == h("11 0E") + b"Acme-AC-1-1.0" + h("FF")


async def test_6_14_read_file_record() -> None:
    assert await ask("14 0E 06 00 04 00 01 00 02 06 00 03 00 09 00 02") == h(
        "14 0C 05 06 0D FE 00 20 05 06 33 CD 00 40"
    )


async def test_6_15_write_file_record() -> None:
    svc = service(spec_device())
    request = "15 0D 06 00 04 00 07 00 03 06 AF 04 BE 10 0D"
    assert await ask_(svc, request) == h(request)
    # Read the three records back: resp data length 08, file resp length 07, reference 06.
    assert await ask_(svc, "14 07 06 00 04 00 07 00 03") == h("14 08 07 06 06 AF 04 BE 10 0D")


async def test_6_16_mask_write_register() -> None:
    svc = service(device(hr=block(100, {5: 0x0012})))
    assert await ask_(svc, "16 00 04 00 F2 00 25") == h("16 00 04 00 F2 00 25")
    # (0x12 AND 0xF2) OR (0x25 AND NOT 0xF2) = 0x12 OR 0x05 = 0x17
    assert await ask_(svc, "03 00 04 00 01") == h("03 02 00 17")


async def test_6_17_read_write_multiple_registers() -> None:
    svc = service(
        device(hr=block(100, {4: 0x00FE, 5: 0x0ACD, 6: 0x0001, 7: 0x0003, 8: 0x000D, 9: 0x00FF}))
    )
    assert await ask_(svc, "17 00 03 00 06 00 0E 00 03 06 00 FF 00 FF 00 FF") == h(
        "17 0C 00 FE 0A CD 00 01 00 03 00 0D 00 FF"
    )
    assert await ask_(svc, "03 00 0E 00 03") == h("03 06 00 FF 00 FF 00 FF")


async def test_6_18_read_fifo_queue() -> None:
    assert await ask("18 04 DE") == h("18 00 06 00 02 01 B8 12 84")


async def test_6_21_read_device_identification() -> None:
    # The spec's example 1 (basic identification in one response), with our conformity level:
    # 81 = basic identification, stream and individual access.
    identity = ModbusDeviceIdentification(
        info_name={
            "VendorName": "Company identification",
            "ProductCode": "Product code XX",
            "MajorMinorRevision": "V2.11",
        }
    )
    svc = service(spec_device(), identity=identity)
    assert await ask_(svc, "2B 0E 01 00") == (
        h("2B 0E 01 81 00 00 03")
        + h("00 16")
        + b"Company identification"
        + h("01 0F")
        + b"Product code XX"
        + h("02 05")
        + b"V2.11"
    )
