"""Testing a synchronous Modbus client (pymodbus's) against a fake device in a thread.

The device runs its own Trio loop in a thread (``start_in_thread``), so any client works:
pymodbus's synchronous or asyncio clients, minimalmodbus, or a subprocess such as mbpoll.
Run it with ``pytest examples/test_sync_client.py``.
"""

from pymodbus.client import ModbusTcpClient

from trio_modbus.testing import FakeDevice, faults


def read_setpoint(client: ModbusTcpClient) -> int | None:
    """The code under test: the setpoint (holding register 10), or None if the device refuses."""
    reply = client.read_holding_registers(10, count=1, device_id=1)
    return None if reply.isError() else reply.registers[0]


def test_the_client_reads_the_setpoint_and_handles_a_refusal() -> None:
    device = FakeDevice({1: {"holding_registers": {10: [450]}}})
    with device.start_in_thread() as running:
        host, port = running.address
        with ModbusTcpClient(host, port=port) as client:
            assert read_setpoint(client) == 450
            with device.faults.injected(faults.ExceptionReply(2), address=10):
                assert read_setpoint(client) is None
            device.datastore[1].holding_registers[10] = 460  # the test changes the device
            assert read_setpoint(client) == 460
    device.recorder.assert_called(fc=3, address=10, times=3)
    assert [r.exception_code for r in device.recorder] == [None, 2, None]
