"""The pytest plugin's fixtures: a fake device per test, configured by a marker.

Installing trio_modbus registers the plugin; these tests need pytest-trio (``trio_mode =
true``). Run them with ``pytest examples/test_plugin_fixtures.py``.
"""

import pytest
import trio

from trio_modbus.testing import FakeDevice, faults
from trio_modbus.testing.raw import RawClient, read_holding_registers, write_register

SEED = {1: {"holding_registers": {0: [215, 450]}}}


@pytest.mark.modbus_device(SEED)
async def test_the_raw_client_reads_what_the_marker_seeded(modbus_raw: RawClient) -> None:
    reply = await modbus_raw.request(read_holding_registers(0, 2))
    assert reply.registers() == [215, 450]


@pytest.mark.modbus_device(SEED)
async def test_a_fault_and_an_expectation_on_the_served_device(
    modbus_device: FakeDevice, modbus_raw: RawClient
) -> None:
    modbus_device.faults.add(faults.Busy(), times=1)
    modbus_device.expect(fc=6, address=1, value=460)  # checked when the test ends
    assert (await modbus_raw.request(read_holding_registers(1, 1))).exception_code == 6
    assert (await modbus_raw.request(read_holding_registers(1, 1))).registers() == [450]
    await modbus_raw.request(write_register(1, 460))
    assert modbus_device.datastore[1].holding_registers[1] == 460


@pytest.mark.modbus_device(SEED)
async def test_in_memory_under_the_autojump_clock(
    modbus_memory: tuple[FakeDevice, trio.abc.Stream], autojump_clock: trio.abc.Clock
) -> None:
    device, stream = modbus_memory
    device.faults.add(faults.Delay(30), times=1)
    client = RawClient(stream)
    start = trio.current_time()
    assert (await client.request(read_holding_registers(0, 1))).registers() == [215]
    assert trio.current_time() - start == 30  # half a minute, in no real time
