"""pymodbus's own simulator configurations, answered by trio_modbus and by pymodbus.

pymodbus's answer is its ``ModbusSimulatorContext`` built in-process from the same JSON:
``getValues`` is what its server sends (it validates inside; an exception it raises is
answered with 04, a register outside 0..65535 fails to encode, also 04). trio_modbus's answer
is what its service does with a device context: ``validate`` (False: 02), then
``getValues``. Both are rendered as PDU bytes and compared, read after read in the same
order (the ``increment`` actions of pymodbus's ``device`` change values on every read, on
both sides alike).

The cases where pymodbus is wrong are classified by :func:`known_defect`, each with its
reason; every other case must match byte for byte. The counts are reported in the test's
output (``-rP``).
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.datastore import ModbusSimulatorContext

from trio_modbus import serve_tcp
from trio_modbus.pdu import responses as enc
from trio_modbus.simulator import CellType, SimulatorData, build_server_context, load_config

CORPUS = Path(__file__).parent / "corpus"
FILES = ["pymodbus-3.12.1-setup.json", "pymodbus-older-setup.json"]
DEVICES = ["device", "device_try"]
BIT_FUNCTIONS = (1, 2)
REGISTER_FUNCTIONS = (3, 4)


def exception_pdu(function_code: int, code: int) -> bytes:
    return bytes([function_code | 0x80, code])


def pymodbus_answer(context: ModbusSimulatorContext, fc: int, address: int, count: int) -> bytes:
    """What pymodbus 3.12's server sends for this read (its datastore's part)."""
    try:
        values = context.getValues(fc, address, count)
    except Exception:
        return exception_pdu(fc, 4)
    if isinstance(values, int):  # ExcCodes
        return exception_pdu(fc, int(values))
    if fc in BIT_FUNCTIONS:
        return enc.encode_read_bits(fc, values)
    if not all(0 <= v <= 0xFFFF for v in values):
        return exception_pdu(fc, 4)  # the response cannot be encoded
    return enc.encode_read_registers(fc, values)


def trio_answer(data: SimulatorData, fc: int, address: int, count: int) -> bytes:
    """What trio_modbus's service sends for this read (validate, then getValues)."""
    context = data.context()
    if not context.validate(fc, address, count):
        return exception_pdu(fc, 2)
    values = context.getValues(fc, address, count)
    if isinstance(values, int):
        return exception_pdu(fc, int(values))
    if fc in BIT_FUNCTIONS:
        return enc.encode_read_bits(fc, values)
    return enc.encode_read_registers(fc, values)


def known_defect(
    data: SimulatorData, fc: int, address: int, count: int, theirs: bytes, ours: bytes
) -> str | None:
    """Why pymodbus's answer is wrong for this read, or None if it is not a known defect."""
    cells = data.cells
    size = len(cells)
    if fc in BIT_FUNCTIONS:
        first, last = address >> 4, (address + count - 1) >> 4
    else:
        first, last = address, address + count - 1
    if last >= size and theirs == exception_pdu(fc, 4) and ours == exception_pdu(fc, 2):
        return "a range leaving the device: pymodbus raises IndexError (04), the spec says 02"
    reached = range(first, min(last, size - 1) + 1)
    same_shape = len(theirs) == len(ours) and theirs[:2] == ours[:2] and ours[0] == fc
    if same_shape and any(
        cells[i].action == "random"
        or (cells[i].type is CellType.NEXT and cells[i - 1].action == "random")
        for i in reached
    ):
        return "a random action: the two generators draw different values"
    if fc in BIT_FUNCTIONS:
        checked = (count + 15) // 16  # pymodbus validates ceil(count / 16) cells from the first
        if first + checked - 1 < last:
            return "an unaligned bit range: pymodbus does not validate its last cell"
    return None


def resync(
    context: ModbusSimulatorContext, data: SimulatorData, fc: int, address: int, count: int
) -> None:
    """After an excluded read (pymodbus may have run actions ours did not), give pymodbus's
    cells near the read our values, so that the next reads compare from the same state."""
    if fc in BIT_FUNCTIONS:
        first, last = address >> 4, (address + count - 1) >> 4
    else:
        first, last = address, address + count - 1
    for index in range(max(first - 8, 0), min(last + 8, len(data.cells) - 1) + 1):
        context.registers[index].value = data.cells[index].value


def reads(data: SimulatorData) -> Iterator[tuple[int, int, int]]:
    """The reads compared: every readable cell (count 1, and its whole value), its 16 bits,
    some ranges across values and ends, and a sample of invalid cells."""
    cells = data.cells
    size = len(cells)
    for index, cell in enumerate(cells):
        if cell.type is CellType.INVALID:
            if index % 251 == 0 or index in (size - 1,):
                for fc in REGISTER_FUNCTIONS:
                    yield fc, index, 1
            continue
        span = data.value_span(index) if cell.type is not CellType.NEXT else 1
        for fc in REGISTER_FUNCTIONS:
            yield fc, index, 1
            if span > 1:
                yield fc, index, span
            yield fc, index, 3  # across the value's end
        for fc in BIT_FUNCTIONS:
            yield fc, index * 16, 16
            yield fc, index * 16 + 3, 1
            if index % 7 == 0:
                yield fc, index * 16 + 9, 16  # unaligned: reaches the next cell
    for fc in REGISTER_FUNCTIONS:
        for address, count in ((size - 2, 2), (size - 1, 2), (size, 1), (size - 3, 10)):
            yield fc, address, count
    for fc in BIT_FUNCTIONS:
        yield fc, (size - 1) * 16, 16
        yield fc, 65535, 1


def compare(
    document: dict[str, Any],
    device: str,
    theirs_answer: Callable[[int, int, int], bytes],
    theirs_resync: Callable[[SimulatorData, int, int, int], None],
) -> tuple[int, Counter[str], list[tuple[int, int, int, str, str]]]:
    """Compare every read of :func:`reads`, in order: (identical, excluded reasons, mismatches).

    ``theirs_answer`` gives pymodbus's answer to a read; ``theirs_resync`` brings pymodbus's
    cells to ours after an excluded read.
    """
    config = load_config(document)
    _, device_config = config.select(None, device)
    data = SimulatorData(device_config, seed=1)
    compared = 0
    excluded: Counter[str] = Counter()
    mismatches = []
    for fc, address, count in reads(data):
        theirs = theirs_answer(fc, address, count)
        ours = trio_answer(data, fc, address, count)
        if theirs == ours:
            compared += 1
            continue
        reason = known_defect(data, fc, address, count, theirs, ours)
        if reason is None:
            mismatches.append((fc, address, count, theirs.hex(), ours.hex()))
        else:
            excluded[reason] += 1
            theirs_resync(data, fc, address, count)
    return compared, excluded, mismatches


def live_pymodbus(
    document: dict[str, Any], device: str
) -> tuple[Callable[[int, int, int], bytes], Callable[[SimulatorData, int, int, int], None]]:
    """The installed pymodbus's answers, from its ``ModbusSimulatorContext`` in-process.

    pymodbus's ``random`` action draws from the process-wide ``random`` module: it is seeded
    here, so that its draws (and which reads they exclude) do not depend on the tests that
    ran before.
    """
    random.seed(0x5EED)
    context = ModbusSimulatorContext(copy.deepcopy(document["device_list"][device]), None)

    def answer(fc: int, address: int, count: int) -> bytes:
        return pymodbus_answer(context, fc, address, count)

    def sync(data: SimulatorData, fc: int, address: int, count: int) -> None:
        resync(context, data, fc, address, count)

    return answer, sync


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", FILES)
def test_corpus_answers_as_pymodbus(
    name: str, device: str, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads((CORPUS / name).read_text())
    compared, excluded, mismatches = compare(document, device, *live_pymodbus(document, device))
    with capsys.disabled():
        print(f"\n{name} {device}: {compared} reads identical, excluded {dict(excluded)}")
    assert not mismatches[:20]
    assert compared > 500


@pytest.mark.parametrize("device", DEVICES)
def test_corpus_answers_as_pymodbus_3_16(device: str, capsys: pytest.CaptureFixture[str]) -> None:
    """pymodbus 3.16.1's own setup.json, against 3.16.1's answers recorded by ``capture.py``
    (3.16 is not the pymodbus the tests install), read after read in the same order."""
    document = json.loads((CORPUS / "pymodbus-3.16.1-setup.json").read_text())
    recorded = json.loads((CORPUS / "pymodbus-3.16.1-answers.json").read_text())
    assert recorded["pymodbus"] == "3.16.1"
    answers = iter(recorded["answers"][device])

    def answer(fc: int, address: int, count: int) -> bytes:
        expected_fc, expected_address, expected_count, theirs = next(answers)
        assert (fc, address, count) == (expected_fc, expected_address, expected_count)
        return bytes.fromhex(theirs)

    compared, excluded, mismatches = compare(document, device, answer, lambda *args: None)
    assert next(answers, None) is None  # every recorded read was replayed
    with capsys.disabled():
        print(
            f"\npymodbus-3.16.1-setup.json {device}: {compared} reads identical,"
            f" excluded {dict(excluded)}"
        )
    assert not mismatches[:20]
    assert compared > 500


def test_random_cells_stay_in_their_range() -> None:
    """The excluded random cells: ours draw inside minval..maxval (from the older file's
    ``kwargs``, which pymodbus 3.12 ignores)."""
    document = json.loads((CORPUS / "pymodbus-older-setup.json").read_text())
    _, device = load_config(document).select(None, "device_try")
    data = SimulatorData(device, seed=7)
    context = data.context()
    for _ in range(50):
        assert 45 <= context.getValues(3, 2306, 1)[0] <= 55  # type: ignore[index]
        value = data.get(3878, "uint32")
        context.getValues(3, 3878, 2)
        assert 45000 <= data.get(3878, "uint32") <= 55000
        assert value is not None


def test_corpus_servers_load_with_their_aliases() -> None:
    for name in [*FILES, "pymodbus-3.16.1-setup.json"]:
        config = load_config(CORPUS / name)
        assert list(config.servers) == [
            "server",
            "server_try_serial",
            "server_try_tls",
            "server_test_try_udp",
        ]
        server, device = config.select()
        assert (server.name, device.name) == ("server", "device")
        assert server.ignore_missing_devices is False
        assert config.servers["server_try_serial"].baudrate == 9600
        assert config.servers["server_try_serial"].options["reconnect_delay"] == 2
        assert config.servers["server_try_tls"].certfile is not None
        assert device.register_count == 63000


async def test_served_over_tcp_to_pymodbus_client() -> None:
    """pymodbus's 3.12 setup.json, served by serve_tcp, read by pymodbus's asyncio client."""
    config = load_config(CORPUS / "pymodbus-3.12.1-setup.json")
    server_config, device = config.select()
    data = SimulatorData(device, seed=1)
    reference = ModbusSimulatorContext(
        copy.deepcopy(
            json.loads((CORPUS / "pymodbus-3.12.1-setup.json").read_text())["device_list"][
                "device"
            ]
        ),
        None,
    )
    context = build_server_context(data, server_config)
    async with serve_tcp(context, host="127.0.0.1", port=0) as server:
        host, port = server.address
        results: dict[str, Any] = {}

        async def client_side() -> None:
            client = AsyncModbusTcpClient(host, port=port, timeout=5, retries=0)
            await client.connect()
            try:
                results["string"] = (await client.read_holding_registers(16, count=5)).registers
                results["uint32"] = (await client.read_holding_registers(4, count=2)).registers
                results["float32"] = (await client.read_input_registers(6, count=2)).registers
                results["bits"] = (await client.read_coils(32, count=16)).bits
                results["invalid"] = (
                    await client.read_holding_registers(1, count=1)
                ).exception_code
                results["next"] = (await client.read_holding_registers(5, count=1)).exception_code
                results["end"] = (
                    await client.read_holding_registers(62999, count=2)
                ).exception_code
                results["write_ro"] = (await client.write_register(2, 1)).exception_code
                results["write"] = (await client.write_register(3, 4242)).isError()
                results["after"] = (await client.read_holding_registers(3, count=1)).registers
            finally:
                client.close()

        # pymodbus's asyncio client runs in its own event loop, in a thread.
        await trio.to_thread.run_sync(lambda: asyncio.run(client_side()))
    assert results["string"] == reference.getValues(3, 16, 5)
    assert bytes(b for w in results["string"] for b in w.to_bytes(2, "big")) == b"A_B_C_D_E_"
    assert results["uint32"] == reference.getValues(3, 4, 2)
    assert results["float32"] == reference.getValues(4, 6, 2)
    assert results["bits"][:16] == reference.getValues(1, 32, 16)
    assert results["invalid"] == 2
    assert results["next"] == 2
    assert results["end"] == 2  # pymodbus: 04
    assert results["write_ro"] == 2
    assert results["write"] is False
    assert results["after"] == [4242]
