"""A pytest fixture that runs a trio_modbus server for each test (with pytest-trio).

Copy the fixture into your ``conftest.py``: each test gets a server on a free port of
127.0.0.1, stopped (every socket closed) when the test ends, whatever the test does. The test
below shows a client of your own talking to it; run it with ``pytest examples/pytest_fixture.py``
(``trio_mode = true`` in pytest's configuration, or mark the tests with ``@pytest.mark.trio``).
"""

import struct
from collections.abc import AsyncIterator

import pytest
import trio

from trio_modbus import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from trio_modbus.server import TcpServer, serve_tcp


@pytest.fixture
async def modbus_server() -> AsyncIterator[TcpServer]:
    device = ModbusDeviceContext(hr=ModbusSequentialDataBlock(0, [0] * 100), zero_mode=True)
    async with serve_tcp(ModbusServerContext(device, single=True), port=0) as server:
        yield server


async def test_a_client_writes_then_reads_back(modbus_server: TcpServer) -> None:
    host, port = modbus_server.address
    stream = await trio.open_tcp_stream(host, port)
    write = struct.pack(">HHHBBHH", 1, 0, 6, 1, 6, 10, 1234)  # write register 10
    await stream.send_all(write)
    assert await stream.receive_some(100) == write  # 0x06 answers with the request
    await stream.send_all(struct.pack(">HHHBBHH", 2, 0, 6, 1, 3, 10, 1))  # read it back
    assert await stream.receive_some(100) == struct.pack(">HHHBBBH", 2, 0, 5, 1, 3, 2, 1234)
    await stream.aclose()
    assert modbus_server.statistics.requests == 2
