"""Testing Modbus client code with a fake device: a Trio poller that backs off.

``Poller`` is the code under test: it reads a temperature (holding register 0, tenths of a
degree) every second; when the device answers exception 06 (busy) or does not answer within
two seconds, it waits 1, 2, 4, ... seconds (at most 30) before trying again. The tests run it
against a ``FakeDevice`` over an in-memory stream under Trio's ``autojump_clock``: minutes of
back-off take no real time, and the recorder shows exactly when each request arrived. Run it
with ``pytest examples/test_poller.py`` (``trio_mode = true`` in pytest's configuration).
"""

import struct

import pytest
import trio

from trio_modbus.testing import FakeDevice, faults

# -- the client code under test ---------------------------------------------------------------


class Poller:
    """Polls holding register 0 of unit 1 over a Modbus/TCP stream."""

    def __init__(self, stream: trio.abc.Stream, period: float = 1.0) -> None:
        self.stream = stream
        self.period = period
        self.readings: list[float] = []
        self.tid = 0

    async def read(self) -> float | None:
        """One reading; None when the device is busy or silent."""
        self.tid += 1
        await self.stream.send_all(struct.pack(">HHHBBHH", self.tid, 0, 6, 1, 3, 0, 1))
        with trio.move_on_after(2):
            reply = await self.stream.receive_some(100)
            if reply[7] == 0x83:  # an exception: busy or otherwise, try again later
                return None
            return struct.unpack(">h", reply[9:11])[0] / 10
        return None

    async def run(self, count: int) -> None:
        """Take ``count`` readings, backing off while the device cannot answer."""
        backoff = 1.0
        while len(self.readings) < count:
            value = await self.read()
            if value is None:
                await trio.sleep(backoff)
                backoff = min(backoff * 2, 30)
                continue
            backoff = 1.0
            self.readings.append(value)
            await trio.sleep(self.period)


# -- the tests ----------------------------------------------------------------------------------


@pytest.fixture
def device() -> FakeDevice:
    return FakeDevice({1: {"holding_registers": {0: [215]}}})  # 21.5 degrees


async def test_the_poller_backs_off_while_the_device_is_busy(
    device: FakeDevice, autojump_clock: trio.abc.Clock
) -> None:
    busy = device.faults.add(faults.Busy(), times=3)  # busy, busy, busy, then fine
    async with device.connect_memory() as stream:
        await Poller(stream).run(count=2)
    assert busy.fired == 3
    start = device.recorder[0].time
    arrivals = [round(r.time - start, 3) for r in device.recorder]
    assert arrivals == [0, 1, 3, 7, 8]  # backs off 1, 2, 4 s; then polls every second
    device.recorder.assert_called(fc=3, address=0, times=5)


async def test_the_poller_retries_a_request_the_device_never_answered(
    device: FakeDevice, autojump_clock: trio.abc.Clock
) -> None:
    device.faults.add(faults.NoReply(), nth=1)
    async with device.connect_memory() as stream:
        poller = Poller(stream)
        await poller.run(count=1)
    assert poller.readings == [21.5]
    first, second = device.recorder
    assert not first.delivered and second.delivered
    assert second.time - first.time == pytest.approx(3)  # a 2 s timeout, then 1 s back-off
