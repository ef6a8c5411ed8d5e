"""FakeDevice: data, recording, and every fault observed on the wire."""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from trio_modbus import ConfigurationError
from trio_modbus.testing import FakeDevice, faults, raw

TIMEOUT = 10


def mbap(tid: int, pdu: bytes, unit: int = 1) -> bytes:
    return raw.mbap(pdu, unit=unit, tid=tid)


def rtu(pdu: bytes, unit: int = 1) -> bytes:
    return raw.rtu(pdu, unit=unit)


READ_0_2 = raw.read_holding_registers(0, 2)
REPLY_10_20 = bytes.fromhex("03 04 000a 0014")


async def receive(stream: trio.abc.Stream, size: int, timeout: float = 5) -> bytes:
    """Up to ``size`` bytes, or what arrived before ``timeout`` (seconds of Trio's clock)."""
    data = b""
    with trio.move_on_after(timeout):
        while len(data) < size:
            chunk = await stream.receive_some(size - len(data))
            if not chunk:
                break
            data += chunk
    return data


def device() -> FakeDevice:
    return FakeDevice({1: {"holding_registers": {0: [10, 20]}, "coils": {3: [True, False, True]}}})


@pytest.fixture
async def memory() -> AsyncIterator[tuple[FakeDevice, trio.abc.Stream]]:
    dev = device()
    async with dev.connect_memory() as stream:
        yield dev, stream


# -- data ----------------------------------------------------------------------------------------


def test_the_seed_fills_zero_based_addresses_and_the_view_reads_and_writes() -> None:
    dev = device()
    unit = dev.datastore[1]
    assert unit.holding_registers[0:3] == [10, 20, 0]
    assert unit.coils[3:6] == [True, False, True]
    assert unit.input_registers[65535] == 0
    unit.holding_registers[100:102] = [7, 8]
    assert dev.context[1].getValues(3, 100, 2) == [7, 8]
    assert list(dev.datastore) == [1]
    with pytest.raises(KeyError):
        dev.datastore[2]


def test_a_sparse_device_holds_only_the_seeded_addresses() -> None:
    dev = FakeDevice({1: {"holding_registers": {10: [1, 2]}}}, sparse=True)
    assert dev.datastore[1].holding_registers[10:12] == [1, 2]
    with pytest.raises(KeyError, match="not held"):
        dev.datastore[1].holding_registers[12]
    with pytest.raises(KeyError, match="not held"):
        dev.datastore[1].coils[0]


@pytest.mark.parametrize(
    ("units", "message"),
    [
        ({0: {}}, "unit id 0 is not 1..247"),
        ({1: {"holding": {}}}, "unknown table 'holding'"),
        ({1: {"holding_registers": {65535: [1, 2]}}}, "address 65536 is outside"),
        ({1: {"holding_registers": {0: 70000}}}, r"\[0\]: 70000 is not an int 0..65535"),
        ({1: {"coils": {0: 2}}}, "2 is not a bool"),
        ({}, "give at least one unit"),
    ],
)
def test_a_bad_seed_is_refused_naming_what_is_wrong(units: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        FakeDevice(units)


async def test_a_sparse_device_answers_02_elsewhere() -> None:
    dev = FakeDevice({1: {"holding_registers": {10: [1, 2]}}}, sparse=True)
    async with dev.connect_memory() as stream:
        await stream.send_all(mbap(1, bytes.fromhex("03 000b 0002")))
        assert await receive(stream, 9) == mbap(1, b"\x83\x02")


# -- the recorder --------------------------------------------------------------------------------


async def test_pipelined_requests_are_recorded_in_order_with_their_tids(
    memory: tuple[FakeDevice, trio.abc.Stream], autojump_clock: object
) -> None:
    dev, stream = memory
    await stream.send_all(
        mbap(7, READ_0_2) + mbap(8, raw.write_register(5, 42)) + mbap(9, READ_0_2)
    )
    expected = mbap(7, REPLY_10_20) + mbap(8, raw.write_register(5, 42)) + mbap(9, REPLY_10_20)
    assert await receive(stream, len(expected)) == expected
    await trio.testing.wait_all_tasks_blocked()
    assert [r.transaction_id for r in dev.recorder] == [7, 8, 9]
    assert [r.seq for r in dev.recorder] == [1, 2, 3]
    assert all(r.delivered and r.connection == 1 for r in dev.recorder)
    assert dev.recorder[1].raw_in == mbap(8, raw.write_register(5, 42))
    assert dev.recorder[1].raw_out == mbap(8, raw.write_register(5, 42))
    dev.recorder.assert_called(fc=6, address=5, value=42, times=1)
    dev.recorder.assert_called(function_code=3, times=2)
    dev.recorder.assert_not_called(fc=16)
    dev.recorder.assert_sequence([{"fc": 3}, {"fc": 6}, {"fc": 3}], exact=True)
    dev.recorder.assert_sequence([{"fc": 6}, {"fc": 3}])
    assert dev.recorder.last(fc=3).transaction_id == 9
    assert dev.recorder.count(address=range(4, 6)) == 1  # the write touches 5
    assert dev.datastore[1].holding_registers[5] == 42


def test_a_failed_assertion_prints_the_table_of_what_arrived() -> None:
    dev = device()
    with pytest.raises(AssertionError) as failure:
        dev.recorder.assert_called(fc=6, address=10)
    assert "expected fc=6, address=10 at least once, got 0" in str(failure.value)
    assert "(nothing was received)" in str(failure.value)


async def test_assertion_tables_show_requests_faults_and_lost_replies(
    memory: tuple[FakeDevice, trio.abc.Stream], autojump_clock: object
) -> None:
    dev, stream = memory
    dev.faults.add(faults.NoReply(), function=6, phase="after")
    await stream.send_all(mbap(1, raw.write_register(5, 42)) + mbap(2, READ_0_2))
    assert await receive(stream, 13) == mbap(2, REPLY_10_20)
    with pytest.raises(AssertionError) as failure:
        dev.recorder.assert_sequence([{"fc": 3}, {"fc": 6}])
    table = str(failure.value)
    assert "WriteSingleRegisterRequest(address=5, value=42) → no reply [NoReply()]" in table
    assert "ReadRegistersRequest(function_code=3, address=0, count=2) → 03 04 00 0a 00 14" in table


async def test_wait_for_waits_for_a_background_poller(autojump_clock: object) -> None:
    dev = device()

    async def poller(stream: trio.abc.Stream) -> None:
        for tid in range(1, 100):
            await stream.send_all(mbap(tid, READ_0_2))
            await receive(stream, 13)
            await trio.sleep(1)

    async with dev.connect_memory() as stream, trio.open_nursery() as nursery:
        nursery.start_soon(poller, stream)
        with trio.fail_after(60):
            records = await dev.recorder.wait_for(fc=3, count=5)
        assert len(records) == 5
        assert records[4].time - records[0].time == pytest.approx(4, abs=0.1)
        nursery.cancel_scope.cancel()


# -- reply-level faults --------------------------------------------------------------------------


async def test_delay_answers_late_in_virtual_time(
    memory: tuple[FakeDevice, trio.abc.Stream], autojump_clock: object
) -> None:
    dev, stream = memory
    rule = dev.faults.add(faults.Delay(2.5), function=3, times=1)
    start = trio.current_time()
    await stream.send_all(mbap(1, READ_0_2))
    assert await receive(stream, 13, timeout=10) == mbap(1, REPLY_10_20)
    assert trio.current_time() - start == pytest.approx(2.5)
    assert rule.fired == 1
    start = trio.current_time()
    await stream.send_all(mbap(2, READ_0_2))
    assert await receive(stream, 13) == mbap(2, REPLY_10_20)
    assert trio.current_time() - start < 0.01  # times=1: the second read is not delayed


@pytest.mark.parametrize(("phase", "written"), [("before", 0), ("after", 42)])
async def test_no_reply_before_or_after_execution(
    phase: str, written: int, autojump_clock: object
) -> None:
    dev = device()
    dev.faults.add(faults.NoReply(), function=6, phase=phase)  # type: ignore[arg-type]
    async with dev.connect_memory() as stream:
        await stream.send_all(mbap(1, raw.write_register(5, 42)))
        assert await receive(stream, 12, timeout=3) == b""
    assert dev.datastore[1].holding_registers[5] == written
    [record] = dev.recorder
    assert record.response is None and not record.delivered


async def test_exception_reply_busy_then_ok_and_substitute(
    memory: tuple[FakeDevice, trio.abc.Stream], autojump_clock: object
) -> None:
    dev, stream = memory
    dev.faults.add(faults.Busy(), function=3, times=2)
    dev.faults.add(faults.ExceptionReply(0x0B), function=6)
    dev.faults.add(faults.Substitute(bytes.fromhex("03 02 abcd")), function=4)
    for tid in (1, 2):
        await stream.send_all(mbap(tid, READ_0_2))
        assert await receive(stream, 9) == mbap(tid, b"\x83\x06")
    await stream.send_all(mbap(3, READ_0_2))
    assert await receive(stream, 13) == mbap(3, REPLY_10_20)
    await stream.send_all(mbap(4, raw.write_register(5, 42)))
    assert await receive(stream, 9) == mbap(4, b"\x86\x0b")
    assert dev.datastore[1].holding_registers[5] == 0  # refused before execution
    await stream.send_all(mbap(5, bytes.fromhex("04 0000 0001")))
    assert await receive(stream, 11) == mbap(5, bytes.fromhex("03 02 abcd"))
    assert [r.exception_code for r in dev.recorder] == [6, 6, None, 11, None]


# -- byte-level faults ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (faults.WrongTransactionId(), mbap(2, REPLY_10_20)),
        (faults.WrongTransactionId(offset=100), mbap(101, REPLY_10_20)),
        (faults.WrongUnit(), mbap(1, REPLY_10_20, unit=2)),
        (faults.WrongUnit(reply_unit=9), mbap(1, REPLY_10_20, unit=9)),
        (faults.CorruptHeader(), bytes.fromhex("0001 ffff 0007 01") + REPLY_10_20),
        (faults.CorruptHeader("length"), bytes.fromhex("0001 0000 000c 01") + REPLY_10_20),
        (faults.Truncate(), mbap(1, REPLY_10_20)[:6]),
        (faults.Truncate(keep=8), mbap(1, REPLY_10_20)[:8]),
        (faults.Duplicate(), mbap(1, REPLY_10_20) * 2),
        (faults.LocalEcho(), mbap(1, READ_0_2) + mbap(1, REPLY_10_20)),
        (faults.CorruptChecksum(), mbap(1, REPLY_10_20)),  # MBAP has none: not applied
    ],
    ids=repr,
)
async def test_a_byte_fault_alters_the_mbap_reply(
    fault: faults.Fault, expected: bytes, autojump_clock: object
) -> None:
    dev = device()
    dev.faults.add(fault)
    async with dev.connect_memory() as stream:
        await stream.send_all(mbap(1, READ_0_2))
        assert await receive(stream, 100, timeout=3) == expected
    [record] = dev.recorder
    assert record.raw_out == expected
    assert record.faults[0] == repr(fault)
    if isinstance(fault, faults.CorruptChecksum):
        assert "not applied" in record.faults[1]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (faults.CorruptChecksum(), rtu(REPLY_10_20)[:-1] + bytes([rtu(REPLY_10_20)[-1] ^ 0xFF])),
        (faults.WrongUnit(), rtu(REPLY_10_20, unit=2)),  # a valid frame from another unit
        (faults.WrongTransactionId(), rtu(REPLY_10_20)),  # RTU has none: not applied
        (faults.LocalEcho(), rtu(READ_0_2) + rtu(REPLY_10_20)),
    ],
    ids=repr,
)
async def test_a_byte_fault_alters_the_rtu_reply(
    fault: faults.Fault, expected: bytes, autojump_clock: object
) -> None:
    dev = device()
    dev.faults.add(fault)
    async with dev.connect_memory(framer="rtu") as stream:
        await stream.send_all(rtu(READ_0_2))
        assert await receive(stream, 100, timeout=3) == expected


async def test_corrupt_checksum_breaks_the_ascii_lrc(autojump_clock: object) -> None:
    dev = device()
    dev.faults.add(faults.CorruptChecksum())
    good = raw.ascii(REPLY_10_20)
    async with dev.connect_memory(framer="ascii") as stream:
        await stream.send_all(raw.ascii(READ_0_2))
        reply = await receive(stream, 100, timeout=3)
    assert reply[:-4] == good[:-4] and reply[-2:] == b"\r\n"
    assert int(reply[-4:-2], 16) == int(good[-4:-2], 16) ^ 0xFF


async def test_split_sends_pieces_with_gaps_in_virtual_time(autojump_clock: object) -> None:
    dev = device()
    dev.faults.add(faults.Split(pieces=3, gap=0.5))
    expected = mbap(1, REPLY_10_20)
    async with dev.connect_memory() as stream:
        start = trio.current_time()
        await stream.send_all(mbap(1, READ_0_2))
        pieces = []
        while sum(map(len, pieces)) < len(expected):
            pieces.append(await stream.receive_some(100))
    assert b"".join(pieces) == expected
    assert [len(p) for p in pieces] == [5, 5, 3]
    assert trio.current_time() - start == pytest.approx(1.0)


async def test_stale_reply_resends_the_previous_one_and_garbage_is_seeded(
    memory: tuple[FakeDevice, trio.abc.Stream], autojump_clock: object
) -> None:
    dev, stream = memory
    dev.faults.add(faults.StaleReply(), nth=2)
    dev.faults.add(faults.Garbage(size=5), nth=3, seed=1)
    await stream.send_all(mbap(1, READ_0_2))
    assert await receive(stream, 13) == mbap(1, REPLY_10_20)
    await stream.send_all(mbap(2, raw.write_register(1, 1)))
    assert await receive(stream, 13) == mbap(1, REPLY_10_20)  # the old reply, old tid
    await stream.send_all(mbap(3, READ_0_2))
    garbage = await receive(stream, 5)
    import random

    rng = random.Random(1)
    assert garbage == bytes(rng.randrange(256) for _ in range(5))
    assert [r.delivered for r in dev.recorder] == [True, False, False]
    assert "seed=1" in dev.recorder[2].faults[0]


# -- close, reset, refuse: real sockets ----------------------------------------------------------


async def _read_after_fault(fault: faults.Fault, phase: str) -> tuple[FakeDevice, str]:
    dev = device()
    dev.faults.add(fault, function=6, phase=phase)  # type: ignore[arg-type]
    with trio.fail_after(TIMEOUT):
        async with dev.serve_tcp() as server:
            stream = await trio.open_tcp_stream(*server.address)
            await stream.send_all(mbap(1, raw.write_register(5, 42)))
            try:
                data = await stream.receive_some(100)
                outcome = "eof" if data == b"" else data.hex()
            except trio.BrokenResourceError as exc:
                reset = isinstance(exc.__cause__, ConnectionResetError)
                outcome = "reset" if reset else repr(exc)
            await stream.aclose()
    return dev, outcome


@pytest.mark.parametrize(("phase", "written"), [("before", 0), ("after", 42)])
async def test_close_ends_the_connection_with_fin(phase: str, written: int) -> None:
    dev, outcome = await _read_after_fault(faults.Close(), phase)
    assert outcome == "eof"
    assert dev.datastore[1].holding_registers[5] == written


@pytest.mark.parametrize(("phase", "written"), [("before", 0), ("after", 42)])
async def test_reset_ends_the_connection_with_rst(phase: str, written: int) -> None:
    dev, outcome = await _read_after_fault(faults.Reset(), phase)
    assert outcome == "reset"
    assert dev.datastore[1].holding_registers[5] == written


async def test_refuse_closes_new_connections_that_match() -> None:
    dev = device()
    dev.faults.add(faults.Refuse(), connection=1)
    with trio.fail_after(TIMEOUT):
        async with dev.serve_tcp() as server:
            first = await trio.open_tcp_stream(*server.address)
            assert await first.receive_some(100) == b""  # refused: closed at once
            second = await trio.open_tcp_stream(*server.address)
            await second.send_all(mbap(1, READ_0_2))
            assert await receive(second, 13) == mbap(1, REPLY_10_20)
            await first.aclose()
            await second.aclose()
    assert dev.faults.unused() == []


# -- rules ---------------------------------------------------------------------------------------


async def test_skip_nth_unit_address_and_sub_function_select_requests(
    memory: tuple[FakeDevice, trio.abc.Stream], autojump_clock: object
) -> None:
    dev, stream = memory
    skip = dev.faults.add(faults.ExceptionReply(4), function=3, skip=1, times=1)
    address = dev.faults.add(faults.ExceptionReply(2), address=range(100, 110))
    other_unit = dev.faults.add(faults.ExceptionReply(3), unit=7)
    sub = dev.faults.add(faults.ExceptionReply(1), function=8, sub_function=0x0A)
    unused = dev.faults.add(faults.Delay(1), nth=99)
    requests = [
        (1, READ_0_2, REPLY_10_20),  # skipped by the first rule
        (1, READ_0_2, b"\x83\x04"),  # fires
        (1, READ_0_2, REPLY_10_20),  # times=1: done
        (1, bytes.fromhex("10 0069 0002 04 0001 0002"), b"\x90\x02"),  # writes 105..106
        (7, READ_0_2, b"\x83\x03"),
        (1, bytes.fromhex("08 000a 0000"), b"\x88\x01"),
        (1, bytes.fromhex("08 0000 1234"), bytes.fromhex("08 0000 1234")),
    ]
    for tid, (unit, request, reply) in enumerate(requests, 1):
        await stream.send_all(mbap(tid, request, unit))
        assert await receive(stream, 7 + len(reply)) == mbap(tid, reply, unit)
    assert (skip.matched, skip.fired) == (2, 1)
    assert (address.fired, other_unit.fired, sub.fired) == (1, 1, 1)
    assert dev.faults.unused() == [unused]


async def test_duration_and_injected_scope_end_a_rule(
    memory: tuple[FakeDevice, trio.abc.Stream], autojump_clock: object
) -> None:
    dev, stream = memory
    dev.faults.add(faults.Busy(), function=3, duration=10)
    await stream.send_all(mbap(1, READ_0_2))
    assert await receive(stream, 9) == mbap(1, b"\x83\x06")
    await trio.sleep(10)
    await stream.send_all(mbap(2, READ_0_2))
    assert await receive(stream, 13) == mbap(2, REPLY_10_20)
    with dev.faults.injected(faults.ExceptionReply(4), function=3) as rule:
        await stream.send_all(mbap(3, READ_0_2))
        assert await receive(stream, 9) == mbap(3, b"\x83\x04")
    assert rule.fired == 1 and rule not in dev.faults.rules
    await stream.send_all(mbap(4, READ_0_2))
    assert await receive(stream, 13) == mbap(4, REPLY_10_20)


async def test_probability_with_a_seed_is_reproducible(autojump_clock: object) -> None:
    async def run() -> list[bool]:
        dev = device()
        dev.faults.add(faults.Busy(), probability=0.5, seed=1234)
        async with dev.connect_memory() as stream:
            for tid in range(1, 21):
                await stream.send_all(mbap(tid, READ_0_2))
                await receive(stream, 13, timeout=1)
        return [r.exception_code == 6 for r in dev.recorder]

    first, second = await run(), await run()
    assert first == second
    assert 3 < sum(first) < 17


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"phase": "before"}, "phase='before' for Truncate; it runs after execution"),
        ({"times": 0}, "times=0"),
        ({"skip": -1}, "skip=-1"),
        ({"probability": 0}, "probability=0"),
        ({"duration": 0}, "duration=0"),
    ],
)
def test_bad_rules_are_refused_naming_the_option(options: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        device().faults.add(faults.Truncate(), **options)


def test_bad_actions_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="Delay"):
        faults.Delay(-1)
    with pytest.raises(ConfigurationError, match="Split"):
        faults.Split(pieces=1)
    with pytest.raises(ConfigurationError, match="Substitute"):
        faults.Substitute(b"")


def test_the_device_sets_its_own_hooks() -> None:
    with pytest.raises(ConfigurationError, match="session_hook: a FakeDevice sets it"):
        device()._options("tcp", None, {"session_hook": None})


# -- UDP -----------------------------------------------------------------------------------------


async def test_udp_faults_act_on_datagrams() -> None:
    dev = device()
    dev.faults.add(faults.Split(pieces=2, gap=0), nth=1)
    dev.faults.add(faults.Close(), nth=2)
    dev.faults.add(faults.ExceptionReply(4), nth=3)
    with trio.fail_after(TIMEOUT):
        async with dev.serve_udp() as server:
            sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
            await sock.connect(server.address)
            expected = mbap(1, REPLY_10_20)
            await sock.send(mbap(1, READ_0_2))
            assert await sock.recv(100) == expected[:7]
            assert await sock.recv(100) == expected[7:]
            await sock.send(mbap(2, READ_0_2))  # Close on UDP: no reply
            await sock.send(mbap(3, READ_0_2))
            assert await sock.recv(100) == mbap(3, b"\x83\x04")
            sock.close()
    assert [r.connection for r in dev.recorder] == [1, 2, 3]  # a datagram each
    assert "cannot close" in dev.recorder[1].faults[1]


# -- from a thread, for synchronous clients ------------------------------------------------------


@pytest.mark.interop
def test_a_thread_hosted_device_serves_pymodbus_sync_client() -> None:
    from pymodbus.client import ModbusTcpClient

    dev = device()
    dev.faults.add(faults.ExceptionReply(2), function=3, address=100)
    before = threading.active_count()
    with dev.start_in_thread() as thread:
        host, port = thread.address
        with ModbusTcpClient(host, port=port) as client:
            assert client.read_holding_registers(0, count=2, device_id=1).registers == [10, 20]
            assert client.write_register(7, 99, device_id=1).address == 7
            reply = client.read_holding_registers(100, count=1, device_id=1)
            assert reply.isError() and reply.exception_code == 2
    assert threading.active_count() == before
    assert dev.datastore[1].holding_registers[7] == 99
    dev.recorder.assert_sequence([{"fc": 3}, {"fc": 6, "value": 99}, {"fc": 3}], exact=True)
    with pytest.raises(OSError):
        socket.create_connection((host, port), timeout=1)


def test_a_thread_that_cannot_start_says_why() -> None:
    dev = device()
    with pytest.raises(ConfigurationError, match="could not start"):
        dev.start_in_thread(port=-5)
    with pytest.raises(ConfigurationError, match="transport='x'"):
        dev.start_in_thread("x")


# -- expectations and strict mode ----------------------------------------------------------------


async def test_expectations_answer_before_the_datastore_and_verify_reports_unmet_ones(
    memory: tuple[FakeDevice, trio.abc.Stream], autojump_clock: object
) -> None:
    dev, stream = memory
    scripted = dev.expect(fc=3, address=0, reply=bytes.fromhex("03 02 1234"), times=2)
    refused = dev.expect(fc=6, reply=2)
    observed = dev.expect({"fc": 6, "address": 9}, times=None)  # the datastore answers
    missing = dev.expect(fc=16)
    for tid in (1, 2):
        await stream.send_all(mbap(tid, READ_0_2))
        assert await receive(stream, 11) == mbap(tid, bytes.fromhex("03 02 1234"))
    await stream.send_all(mbap(3, READ_0_2))  # times=2 reached: the datastore answers
    assert await receive(stream, 13) == mbap(3, REPLY_10_20)
    await stream.send_all(mbap(4, raw.write_register(5, 1)))
    assert await receive(stream, 9) == mbap(4, b"\x86\x02")
    await stream.send_all(mbap(5, raw.write_register(9, 1)))
    assert await receive(stream, 12) == mbap(5, raw.write_register(9, 1))
    assert [len(e.calls) for e in (scripted, refused, observed, missing)] == [2, 1, 1, 0]
    with pytest.raises(AssertionError) as failure:
        dev.verify()
    report = str(failure.value)
    assert "expected fc=16 1 time(s): got 0" in report
    assert "received:" in report and "WriteSingleRegisterRequest(address=9, value=1)" in report
    assert "unexpected" not in report  # not strict


async def test_strict_mode_fails_on_traffic_no_expectation_takes(autojump_clock: object) -> None:
    dev = FakeDevice({1: {}}, strict=True)
    dev.expect(fc=3, times=None)
    async with dev.connect_memory() as stream:
        await stream.send_all(mbap(1, READ_0_2) + mbap(2, raw.write_register(1, 5)))
        await receive(stream, 13 + 12)
    with pytest.raises(AssertionError, match=r"unexpected: #2 06 WriteSingleRegisterRequest"):
        dev.verify()


async def test_ordered_expectations_are_met_in_order(
    memory: tuple[FakeDevice, trio.abc.Stream], autojump_clock: object
) -> None:
    dev, stream = memory
    first = dev.expect(fc=6, ordered=True, reply=bytes.fromhex("06 0000 0001"))
    second = dev.expect(fc=3, ordered=True, reply=bytes.fromhex("03 02 0002"))
    await stream.send_all(mbap(1, READ_0_2))  # not its turn: the datastore answers
    assert await receive(stream, 13) == mbap(1, REPLY_10_20)
    await stream.send_all(mbap(2, raw.write_register(0, 9)) + mbap(3, READ_0_2))
    assert await receive(stream, 12 + 11) == mbap(2, bytes.fromhex("06 0000 0001")) + mbap(
        3, bytes.fromhex("03 02 0002")
    )
    assert first.met and second.met
    dev.verify()


async def test_the_device_tells_where_it_serves_while_it_does() -> None:
    dev = device()
    assert dev.address is None
    async with dev.serve_tcp() as server:
        assert dev.address == server.address
        async with dev.serve_udp() as udp:
            assert dev.address == udp.address
        assert dev.address == server.address
    assert dev.address is None


async def test_server_options_build_a_server_that_serves_the_device(nursery: trio.Nursery) -> None:
    from trio_modbus.server import serve_tcp

    dev = device()
    dev.faults.add(faults.Busy(), times=1)
    server = await nursery.start(serve_tcp(port=0, **dev.server_options()).serve)
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream(*server.address)
        await stream.send_all(mbap(1, READ_0_2) + mbap(2, READ_0_2))
        assert await receive(stream, 9 + 13) == mbap(1, b"\x83\x06") + mbap(2, REPLY_10_20)
        await stream.aclose()
        await server.shutdown()
    assert dev.recorder.count() == 2
    with pytest.raises(ConfigurationError, match="transport='x'"):
        dev.server_options("x")
    with pytest.raises(ConfigurationError, match="framer='socket' on a serial line"):
        dev.server_options("serial", "socket")


async def test_a_stopping_server_half_closes_the_devices_tcp_connections(
    mock_clock: trio.testing.MockClock,
) -> None:
    """As with a plain socket: the client gets the end at once, not after the linger time."""
    dev = device()
    async with dev.serve_tcp() as server:
        stream = await trio.open_tcp_stream(*server.address)
        await stream.send_all(mbap(1, READ_0_2))
        assert await receive(stream, 13) == mbap(1, REPLY_10_20)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.shutdown)
            await trio.testing.wait_all_tasks_blocked()
            assert await stream.receive_some() == b""  # the clock has not moved
            await stream.aclose()
    assert trio.current_time() == 0


async def test_a_fault_never_lands_on_a_reply_a_trace_hook_changed(
    autojump_clock: object,
) -> None:
    def retouch(sending: bool, pdu: object) -> object:
        return bytes.fromhex("03 02 0001") if sending else pdu  # every reply changed

    dev = device()
    dev.faults.add(faults.Truncate(keep=3), nth=1)
    async with dev.connect_memory(trace_pdu=retouch) as stream:
        await stream.send_all(mbap(1, READ_0_2) + mbap(2, READ_0_2))
        expected = mbap(1, bytes.fromhex("03 02 0001")) + mbap(2, bytes.fromhex("03 02 0001"))
        assert await receive(stream, len(expected), timeout=3) == expected
    first, second = dev.recorder
    assert "(not applied: the reply changed on its way out)" in first.faults
    assert first.delivered and second.delivered


async def test_reset_forgets_records_rules_and_expectations_but_keeps_the_data(
    memory: tuple[FakeDevice, trio.abc.Stream], autojump_clock: object
) -> None:
    dev, stream = memory
    dev.faults.add(faults.Busy(), nth=1)
    dev.expect(fc=16)
    await stream.send_all(mbap(1, raw.write_register(3, 9)))
    assert await receive(stream, 9) == mbap(1, b"\x86\x06")
    dev.datastore[1].holding_registers[3] = 9
    dev.reset()
    assert (len(dev.recorder), dev.faults.rules, dev.expectations.items) == (0, [], [])
    dev.verify()  # nothing expected any more
    dev.faults.add(faults.ExceptionReply(4), nth=1)  # numbering restarted: the next is #1
    await stream.send_all(mbap(2, READ_0_2))
    assert await receive(stream, 9) == mbap(2, b"\x83\x04")
    assert dev.recorder[0].seq == 1
    assert dev.datastore[1].holding_registers[3] == 9


async def test_records_name_their_rule_and_time_their_reply(
    memory: tuple[FakeDevice, trio.abc.Stream], autojump_clock: object
) -> None:
    dev, stream = memory
    first = dev.faults.add(faults.Busy(), nth=5)
    second = dev.faults.add(faults.Delay(1.5), nth=1)
    await stream.send_all(mbap(1, READ_0_2))
    assert await receive(stream, 13) == mbap(1, REPLY_10_20)
    [record] = dev.recorder
    assert (first.id, second.id, record.rule_id) == (1, 2, 2)
    assert record.sent_at is not None and record.sent_at - record.time == pytest.approx(1.5)


async def test_a_spent_rule_leaves_the_list_and_keeps_its_counts(
    memory: tuple[FakeDevice, trio.abc.Stream], autojump_clock: object
) -> None:
    dev, stream = memory
    busy = dev.faults.add(faults.Busy(), times=2)
    slow = dev.faults.add(faults.Delay(1), duration=5, function=4)
    for tid in (1, 2):
        await stream.send_all(mbap(tid, READ_0_2))
        assert await receive(stream, 9) == mbap(tid, b"\x83\x06")
        assert (busy in dev.faults.rules) == (tid == 1)
    assert busy.fired == 2
    await trio.sleep(10)
    await stream.send_all(mbap(3, raw.read_input_registers(0, 1)))
    assert await receive(stream, 11) == mbap(3, bytes.fromhex("04 02 0000"))
    assert slow not in dev.faults.rules and slow.fired == 0


async def test_a_unit_the_device_does_not_hold_gets_0b_or_silence(autojump_clock: object) -> None:
    for ignore, expected in ((False, mbap(1, b"\x83\x0b", unit=9)), (True, b"")):
        dev = FakeDevice({1: {}}, ignore_missing_devices=ignore)
        async with dev.connect_memory() as stream:
            await stream.send_all(mbap(1, READ_0_2, unit=9))
            assert await receive(stream, 9, timeout=2) == expected


async def test_requests_counts_on_when_the_log_is_cleared_and_wait_changed_wakes(
    memory: tuple[FakeDevice, trio.abc.Stream], autojump_clock: object
) -> None:
    dev, stream = memory
    assert dev.requests == 0
    async with trio.open_nursery() as nursery:
        woke: list[int] = []

        async def watch() -> None:
            await dev.recorder.wait_changed()
            woke.append(dev.requests)

        nursery.start_soon(watch)
        await trio.testing.wait_all_tasks_blocked()
        await stream.send_all(mbap(1, READ_0_2))
        assert await receive(stream, 13) == mbap(1, REPLY_10_20)
    assert woke == [1]
    dev.recorder.clear()
    await stream.send_all(mbap(2, READ_0_2))
    await receive(stream, 13)
    assert (dev.requests, len(dev.recorder)) == (2, 1)
