"""The fake device's faults as real third-party clients see them.

pymodbus 3.12's clients (the synchronous and the asyncio TCP client against a thread-hosted
device, the synchronous serial client on a socat pty) and Debian's ``mbpoll`` (a libmodbus
master, as a subprocess). What each client does with each fault is asserted as observed:

* an exception reply: pymodbus returns an ``ExceptionResponse`` (``isError()``, the code);
  mbpoll prints the exception's name and exits 1;
* a delay within the client's timeout: the answer arrives;
* no reply: pymodbus raises ``ModbusIOException`` after its timeout (``retries=0``); mbpoll
  reports "Connection timed out";
* a bad CRC (serial): pymodbus drops the frame and times out (``ModbusIOException``);
* a wrong transaction id (TCP): pymodbus drops the frame ("request ask for transaction_id=N
  but got id=N+1, Skipping") and times out. With ``offset=1`` the dropped frame carries the
  id of the client's *next* request: pymodbus does not keep it for that one either, and the
  next request gets its own answer.

Each client is followed by a clean request: the link survives the fault.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from pymodbus import FramerType
from pymodbus.client import AsyncModbusTcpClient, ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException, ModbusIOException

from trio_modbus.testing import FakeDevice, faults

from .._pty import SocatPair
from .._tools import require_tool

pytestmark = pytest.mark.interop

CLIENT_TIMEOUT = 1.0  # seconds a client waits for a reply (what NoReply costs)
DELAY = 0.1  # well within CLIENT_TIMEOUT
RUN_TIMEOUT = 20  # seconds a subprocess may take
BAUD = 115200


def make_device() -> FakeDevice:
    """Registers 0..2 hold 10, 20, 30: a read of 0 and a read of 1 tell their answers apart."""
    dev = FakeDevice({1: {"holding_registers": {0: [10, 20, 30]}}})
    dev.faults.add(faults.ExceptionReply(2), nth=1)
    dev.faults.add(faults.Delay(DELAY), nth=2)
    dev.faults.add(faults.NoReply(), nth=3)
    return dev


def check_common(outcomes: list[Any], dev: FakeDevice) -> None:
    """The first three requests: exception 02, a late answer, no answer."""
    exception, late, lost = outcomes[:3]
    assert exception.isError() and exception.exception_code == 2
    assert not late.isError() and late.registers == [20, 30]  # read of 1, answered late
    assert isinstance(lost, ModbusIOException)
    assert [r.faults[:1] for r in dev.recorder[:3]] == [
        ["ExceptionReply(code=2)"],
        [f"Delay(seconds={DELAY}, jitter=0.0)"],
        ["NoReply()"],
    ]
    assert [r.delivered for r in dev.recorder[:3]] == [True, True, False]


def read_all(read: Callable[[int], Any], count: int) -> list[Any]:
    """``count`` reads of 2 registers, at 0, 1, 0, 1, ...: the reply or the exception raised."""
    outcomes: list[Any] = []
    for n in range(count):
        try:
            outcomes.append(read(n % 2))
        except ModbusException as exc:
            outcomes.append(exc)
    return outcomes


def check_wrong_tid(outcomes: list[Any], dev: FakeDevice) -> None:
    """Request 4 (a read of 1) answered with tid 5; request 5 (a read of 0) has tid 5."""
    dropped, after = outcomes[3:5]
    assert isinstance(dropped, ModbusIOException)  # the frame was skipped: a timeout
    assert after.registers == [10, 20]  # its own answer, not request 4's [20, 30]
    assert after.transaction_id == 5
    wrong = dev.recorder[3]
    assert wrong.transaction_id == 4 and wrong.raw_out is not None
    assert int.from_bytes(wrong.raw_out[:2], "big") == 5
    assert dev.recorder[4].transaction_id == 5


def test_pymodbus_sync_tcp_client() -> None:
    dev = make_device()
    dev.faults.add(faults.WrongTransactionId(offset=1), nth=4)
    with dev.start_in_thread() as thread:
        host, port = thread.address
        with ModbusTcpClient(host, port=port, timeout=CLIENT_TIMEOUT, retries=0) as client:
            outcomes = read_all(
                lambda address: client.read_holding_registers(address, count=2, device_id=1), 6
            )
    check_common(outcomes, dev)
    check_wrong_tid(outcomes, dev)
    assert outcomes[5].registers == [20, 30]  # and the link still works
    assert len(dev.recorder) == 6


def test_pymodbus_asyncio_tcp_client() -> None:
    dev = make_device()
    dev.faults.add(faults.WrongTransactionId(offset=1), nth=4)

    async def run(host: str, port: int) -> list[Any]:
        client = AsyncModbusTcpClient(host, port=port, timeout=CLIENT_TIMEOUT, retries=0)
        assert await client.connect()
        outcomes: list[Any] = []
        try:
            for n in range(6):
                try:
                    outcomes.append(
                        await client.read_holding_registers(n % 2, count=2, device_id=1)
                    )
                except ModbusException as exc:
                    outcomes.append(exc)
        finally:
            client.close()
        return outcomes

    with dev.start_in_thread() as thread:
        outcomes = asyncio.run(asyncio.wait_for(run(*thread.address), RUN_TIMEOUT))
    check_common(outcomes, dev)
    check_wrong_tid(outcomes, dev)
    assert outcomes[5].registers == [20, 30]
    assert len(dev.recorder) == 6


@pytest.mark.slow
def test_pymodbus_serial_client_on_a_pty(socat_pair: SocatPair) -> None:
    dev = make_device()
    dev.faults.add(faults.CorruptChecksum(), nth=4)
    with (
        dev.start_in_thread("serial", port=socat_pair.server, baudrate=BAUD),
        ModbusSerialClient(
            port=socat_pair.client,
            framer=FramerType.RTU,
            baudrate=BAUD,
            timeout=CLIENT_TIMEOUT,
            retries=0,
        ) as client,
    ):
        outcomes = read_all(
            lambda address: client.read_holding_registers(address, count=2, device_id=1), 5
        )
    check_common(outcomes, dev)
    # A bad CRC: pymodbus drops the frame, and the read times out.
    assert isinstance(outcomes[3], ModbusIOException)
    corrupt = dev.recorder[3]
    assert corrupt.faults == ["CorruptChecksum()"] and corrupt.delivered
    assert outcomes[4].registers == [10, 20]  # the next read is answered
    assert [r.transaction_id for r in dev.recorder] == [0] * 5


# -- mbpoll ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mbpoll() -> str:
    return require_tool("mbpoll")


def run_mbpoll(mbpoll: str, port: int, *options: str) -> subprocess.CompletedProcess[str]:
    """One poll of holding registers 0..1 of unit 1 (PDU addressing), timeout 1 s."""
    cmd = [mbpoll, "-m", "tcp", "-p", str(port), "-a", "1", "-0", "-1", "-t4", "-r", "0"]
    cmd += ["-c", "2", "-o", str(CLIENT_TIMEOUT), *options, "127.0.0.1"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)


@pytest.mark.slow
def test_mbpoll_sees_an_exception_and_a_timeout(mbpoll: str) -> None:
    dev = FakeDevice({1: {"holding_registers": {0: [10, 20]}}})
    dev.faults.add(faults.ExceptionReply(2), nth=1)
    dev.faults.add(faults.NoReply(), nth=2)
    with dev.start_in_thread() as thread:
        _host, port = thread.address
        exception = run_mbpoll(mbpoll, port)
        timeout = run_mbpoll(mbpoll, port)
        clean = run_mbpoll(mbpoll, port)
    assert exception.returncode == 1
    assert "Read output (holding) register failed: Illegal data address" in exception.stderr
    assert timeout.returncode == 1
    assert "Read output (holding) register failed: Connection timed out" in timeout.stderr
    assert clean.returncode == 0, clean.stderr
    assert "[0]: \t10\n[1]: \t20" in clean.stdout
    assert [r.faults for r in dev.recorder] == [["ExceptionReply(code=2)"], ["NoReply()"], []]
    assert [r.connection for r in dev.recorder] == [1, 2, 3]  # a connection per run
