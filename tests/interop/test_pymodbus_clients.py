"""pymodbus's synchronous clients against every trio_modbus transport.

Each test starts a server inside the test's Trio run, then runs one blocking pymodbus client
in a worker thread through the same script: read every table, write coils and registers
(single and multiple), mask-write, read/write, identification, an exception reply. The
datastore itself is checked after the writes.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
import trio
from pymodbus import FramerType as PymodbusFramer
from pymodbus.client import (
    ModbusSerialClient,
    ModbusTcpClient,
    ModbusTlsClient,
)
from pymodbus.exceptions import ModbusException

from trio_modbus import FramerType, serve_serial, serve_tcp, serve_tls, serve_udp

from .._pty import SocatPair
from .._pymodbus import ModbusUdpClient
from .._tls import TlsFiles
from ._support import (
    CLIENT_TIMEOUT,
    PRODUCT_CODE,
    REVISION,
    TIMEOUT,
    UNIT,
    VENDOR,
    coil,
    discrete_input,
    holding,
    input_register,
    make_context,
    make_identity,
    masked,
    server_id,
)

pytestmark = [pytest.mark.interop, pytest.mark.slow]

ClientFactory = Callable[[], Any]

# Where the script writes (apart from one another and from what it reads before writing).
SINGLE_COIL = 1  # initially off (1 % 3 != 0): written on
COIL_OFF = 0  # initially on: written off (FC 05 with 0x0000)
COILS_AT = 100
COILS = [True, False, True, True, False, False, True, False, True, True, False]
SINGLE_REG = 3
REGS_AT = 20
REGS = [0, 1, 0x7FFF, 0x8000, 0xFFFF, 12345]
MASK_AT, AND_MASK, OR_MASK = 30, 0xF0F2, 0x0525
RW_WRITE_AT, RW_VALUES, RW_READ_AT, RW_READ_COUNT = 40, [7, 8, 9], 39, 5


REQUESTS = 20  # requests exercise() sends, each answered once


def exercise(client: Any) -> None:
    """The whole script, blocking (runs in a worker thread): :data:`REQUESTS` requests."""
    assert client.connect(), "the client could not connect"
    try:
        # Reads of every table, the largest counts the spec allows, values checked one by one.
        rr = client.read_coils(0, count=2000, device_id=UNIT)
        assert not rr.isError(), rr
        assert rr.bits[:2000] == [coil(n) for n in range(2000)]
        rr = client.read_coils(7, count=3, device_id=UNIT)
        assert rr.bits[:3] == [coil(7), coil(8), coil(9)]
        rr = client.read_discrete_inputs(5, count=19, device_id=UNIT)
        assert not rr.isError(), rr
        assert rr.bits[:19] == [discrete_input(n) for n in range(5, 24)]
        rr = client.read_holding_registers(0, count=125, device_id=UNIT)
        assert not rr.isError(), rr
        assert rr.registers == [holding(n) for n in range(125)]
        rr = client.read_input_registers(1875, count=125, device_id=UNIT)
        assert not rr.isError(), rr
        assert rr.registers == [input_register(n) for n in range(1875, 2000)]

        # Writes (FC 05, 15, 06, 16), each read back through the client.
        assert not client.write_coil(SINGLE_COIL, True, device_id=UNIT).isError()
        assert not client.write_coil(COIL_OFF, False, device_id=UNIT).isError()
        # A copy: pymodbus pads the caller's list to a multiple of 8 in place.
        assert not client.write_coils(COILS_AT, list(COILS), device_id=UNIT).isError()
        rr = client.read_coils(0, count=3, device_id=UNIT)
        assert rr.bits[:3] == [False, True, coil(2)]
        rr = client.read_coils(COILS_AT - 1, count=len(COILS) + 2, device_id=UNIT)
        assert rr.bits[: len(COILS) + 2] == [
            coil(COILS_AT - 1),
            *COILS,
            coil(COILS_AT + len(COILS)),
        ]
        assert not client.write_register(SINGLE_REG, 0xBEEF, device_id=UNIT).isError()
        assert not client.write_registers(REGS_AT, list(REGS), device_id=UNIT).isError()
        rr = client.read_holding_registers(SINGLE_REG, count=1, device_id=UNIT)
        assert rr.registers == [0xBEEF]
        rr = client.read_holding_registers(REGS_AT - 1, count=len(REGS) + 2, device_id=UNIT)
        assert rr.registers == [holding(REGS_AT - 1), *REGS, holding(REGS_AT + len(REGS))]

        # FC 22 and FC 23.
        rr = client.mask_write_register(
            address=MASK_AT, and_mask=AND_MASK, or_mask=OR_MASK, device_id=UNIT
        )
        assert not rr.isError(), rr
        rr = client.read_holding_registers(MASK_AT, count=1, device_id=UNIT)
        assert rr.registers == [masked(holding(MASK_AT), AND_MASK, OR_MASK)]
        rr = client.readwrite_registers(
            read_address=RW_READ_AT,
            read_count=RW_READ_COUNT,
            write_address=RW_WRITE_AT,
            values=list(RW_VALUES),
            device_id=UNIT,
        )
        assert not rr.isError(), rr
        assert rr.registers == [holding(RW_READ_AT), *RW_VALUES, holding(RW_WRITE_AT + 3)]

        # Identification: 0x2B/0x0E basic stream and 0x11.
        rr = client.read_device_information(read_code=1, object_id=0, device_id=UNIT)
        assert not rr.isError(), rr
        assert rr.information == {
            0: VENDOR.encode(),
            1: PRODUCT_CODE.encode(),
            2: REVISION.encode(),
        }
        rr = client.report_device_id(device_id=UNIT)
        assert not rr.isError(), rr
        # pymodbus's decoder keeps the run indicator (0xFF: ON) at the end of the identifier.
        assert rr.identifier == server_id() + b"\xff"
        assert rr.status is True

        # An exception reply: the range leaves the table (ILLEGAL DATA ADDRESS).
        rr = client.read_holding_registers(1999, count=2, device_id=UNIT)
        assert rr.isError()
        assert rr.exception_code == 2
    finally:
        client.close()


def check_datastore(context: Any) -> None:
    """The writes of :func:`exercise` landed in the datastore itself."""
    device = context[UNIT]
    assert device.getValues(1, 0, 3) == [False, True, coil(2)]
    assert device.getValues(1, COILS_AT, len(COILS)) == COILS
    assert device.getValues(3, SINGLE_REG, 1) == [0xBEEF]
    assert device.getValues(3, REGS_AT, len(REGS)) == REGS
    assert device.getValues(3, MASK_AT, 1) == [masked(holding(MASK_AT), AND_MASK, OR_MASK)]
    assert device.getValues(3, RW_WRITE_AT, 3) == RW_VALUES
    # Read-only tables and what was not written are unchanged.
    assert device.getValues(2, 0, 2000) == [discrete_input(n) for n in range(2000)]
    assert device.getValues(4, 0, 2000) == [input_register(n) for n in range(2000)]
    assert device.getValues(3, 0, 3) == [holding(0), holding(1), holding(2)]


def client_ssl_context(
    tls: TlsFiles,
    *,
    certificate: str = "client",
    version: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
) -> ssl.SSLContext:
    """A client context that verifies the server's chain against the test CA.

    pymodbus's sync TLS client wraps its socket without ``server_hostname``, so the host
    name cannot be checked; the chain still is (``CERT_REQUIRED``).

    Args:
        tls: The test PKI.
        certificate: ``"client"`` (signed by the CA), ``"stranger"`` (self-signed) or
            ``"none"``.
        version: The highest TLS version the client offers.
    """
    ctx = ssl.create_default_context(cafile=tls.ca)
    ctx.check_hostname = False
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    ctx.maximum_version = version
    if certificate == "client":
        ctx.load_cert_chain(tls.client_cert, tls.client_key)
    elif certificate == "stranger":
        ctx.load_cert_chain(tls.stranger_cert, tls.stranger_key)
    else:
        assert certificate == "none", certificate
    return ctx


@pytest.fixture
def resources(kind: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The fixtures the transport ``kind`` needs, set up before the test's Trio run."""
    if kind == "tls":
        return {"tls": request.getfixturevalue("tls_files")}
    if kind.startswith("serial-"):
        return {"pty": request.getfixturevalue("socat_pair")}
    return {}


@asynccontextmanager
async def running(
    kind: str, context: Any, resources: dict[str, Any]
) -> AsyncIterator[tuple[Any, ClientFactory]]:
    """Start the server for ``kind``; yield it and a factory of pymodbus clients for it."""
    options: dict[str, Any] = {"identity": make_identity()}
    common: dict[str, Any] = {"timeout": CLIENT_TIMEOUT, "retries": 0}
    if kind in ("tcp", "rtu-over-tcp"):
        framer = FramerType.RTU if kind == "rtu-over-tcp" else FramerType.SOCKET
        client_framer = PymodbusFramer.RTU if kind == "rtu-over-tcp" else PymodbusFramer.SOCKET
        async with serve_tcp(context, port=0, framer=framer, **options) as server:
            host, port = server.address
            yield server, lambda: ModbusTcpClient(host, port=port, framer=client_framer, **common)
    elif kind == "udp":
        async with serve_udp(context, port=0, **options) as server:
            host, port = server.address
            yield server, lambda: ModbusUdpClient(host, port=port, **common)
    elif kind == "tls":
        tls: TlsFiles = resources["tls"]
        async with serve_tls(
            context,
            port=0,
            certfile=tls.server_cert,
            keyfile=tls.server_key,
            cafile=tls.ca,
            require_client_cert=True,
            **options,
        ) as server:
            host, port = server.address
            sslctx = client_ssl_context(tls)
            yield server, lambda: ModbusTlsClient(host, port=port, sslctx=sslctx, **common)
    elif kind in ("serial-rtu", "serial-ascii"):
        pty: SocatPair = resources["pty"]
        ascii_ = kind == "serial-ascii"
        async with serve_serial(
            context,
            port=pty.server,
            baudrate=115200,
            framer=FramerType.ASCII if ascii_ else FramerType.RTU,
            **options,
        ) as server:
            await server.port_open.wait()
            yield (
                server,
                lambda: ModbusSerialClient(
                    pty.client,
                    framer=PymodbusFramer.ASCII if ascii_ else PymodbusFramer.RTU,
                    baudrate=115200,
                    **common,
                ),
            )
    else:  # pragma: no cover - a typo in the parametrisation
        raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["tcp", "udp", "tls", "rtu-over-tcp", "serial-rtu", "serial-ascii"]
)
async def test_pymodbus_reads_and_writes_every_table(kind: str, resources: dict[str, Any]) -> None:
    context = make_context()
    with trio.fail_after(TIMEOUT):
        async with running(kind, context, resources) as (server, make_client):
            await trio.to_thread.run_sync(exercise, make_client(), abandon_on_cancel=True)
            stats = server.statistics
            assert (stats.requests, stats.responses) == (REQUESTS, REQUESTS)
            assert stats.protocol_errors == 0
            if kind in ("tcp", "tls", "rtu-over-tcp"):
                # The client closed its connection: the server notices and counts it.
                while server.statistics.connections_active:
                    await trio.sleep(0.01)
                assert server.statistics.connections_accepted == 1
    check_datastore(context)


def refused(client: Any) -> str:
    """Try one read; describe how it failed (the test fails if it succeeds)."""
    try:
        if not client.connect():
            return "connect() refused"
        try:
            rr = client.read_holding_registers(0, count=1, device_id=UNIT)
        except ModbusException as exc:
            return f"read raised {exc!r}"
        except ssl.SSLError as exc:
            # Under TLS 1.3 the server's refusal arrives after the client's handshake: the
            # TLS alert that says why (the server sends it), raised by pymodbus's first read.
            return f"read raised the TLS alert {exc!r}"
        assert rr.isError(), f"a client without a valid certificate was served: {rr}"
        return f"read answered {rr}"
    finally:
        client.close()


def one_read(client: Any) -> list[int]:
    """Connect, read holding registers 0..2, close (blocking)."""
    assert client.connect()
    try:
        rr = client.read_holding_registers(0, count=3, device_id=UNIT)
        assert not rr.isError(), rr
        return list(rr.registers)
    finally:
        client.close()


@pytest.mark.parametrize("certificate", ["none", "stranger"])
@pytest.mark.parametrize(
    "version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"]
)
async def test_pymodbus_tls_refuses_client_without_valid_certificate(
    tls_files: TlsFiles, certificate: str, version: ssl.TLSVersion
) -> None:
    context = make_context()
    with trio.fail_after(TIMEOUT):
        async with serve_tls(
            context,
            port=0,
            certfile=tls_files.server_cert,
            keyfile=tls_files.server_key,
            cafile=tls_files.ca,
            require_client_cert=True,
        ) as server:
            host, port = server.address

            def client(certificate: str) -> ModbusTlsClient:
                sslctx = client_ssl_context(tls_files, certificate=certificate, version=version)
                return ModbusTlsClient(
                    host, port=port, sslctx=sslctx, timeout=CLIENT_TIMEOUT, retries=0
                )

            how = await trio.to_thread.run_sync(
                refused, client(certificate), abandon_on_cancel=True
            )
            while server.statistics.handshake_failures < 1:
                await trio.sleep(0.01)
            stats = server.statistics
            assert stats.handshake_failures == 1, how
            assert stats.requests == 0
            while server.statistics.connections_active:
                await trio.sleep(0.01)
            # The server is unharmed: a client with a good certificate is served.
            registers = await trio.to_thread.run_sync(
                one_read, client("client"), abandon_on_cancel=True
            )
            assert registers == [holding(0), holding(1), holding(2)]
            assert server.statistics.handshake_failures == 1


def serial_addressing(client: Any) -> None:
    """Broadcast writes, a request for another station, then a normal read (blocking)."""
    assert client.connect()
    try:
        # Unit 0 is a broadcast: executed by every station, answered by none.
        client.write_register(5, 777, device_id=0, no_response_expected=True)
        client.write_coils(0, [False, True, True], device_id=0, no_response_expected=True)
        # Unit 2 is another station on the line: this server stays silent.
        with pytest.raises(ModbusException, match="No response"):
            client.read_holding_registers(0, count=1, device_id=UNIT + 1)
        # The line is still in step: the next request for our unit is answered.
        rr = client.read_holding_registers(4, count=3, device_id=UNIT)
        assert rr.registers == [holding(4), 777, holding(6)]
        rr = client.read_coils(0, count=4, device_id=UNIT)
        assert rr.bits[:4] == [False, True, True, coil(3)]
    finally:
        client.close()


@pytest.mark.parametrize("framer", [FramerType.RTU, FramerType.ASCII])
async def test_pymodbus_serial_broadcast_and_other_units(
    framer: FramerType, socat_pair: SocatPair
) -> None:
    context = make_context()
    with trio.fail_after(TIMEOUT):
        async with serve_serial(
            context, port=socat_pair.server, framer=framer, baudrate=115200, broadcast=True
        ) as server:
            await server.port_open.wait()
            client = ModbusSerialClient(
                socat_pair.client,
                framer=PymodbusFramer(framer.value),
                baudrate=115200,
                timeout=0.5,  # the wait for the silent station's reply
                retries=0,
            )
            await trio.to_thread.run_sync(serial_addressing, client, abandon_on_cancel=True)
            assert server.statistics.responses == 2  # the two reads of unit 1, nothing else
    device = context[UNIT]
    assert device.getValues(3, 5, 1) == [777]
    assert device.getValues(1, 0, 3) == [False, True, True]


CLIENTS, ROUNDS = 8, 50


def busy_client(client: Any, i: int) -> None:
    """One of several concurrent clients: its own registers, checked every round (blocking)."""
    assert client.connect()
    try:
        for k in range(ROUNDS):
            rr = client.read_input_registers(i * 10, count=10, device_id=UNIT)
            assert rr.registers == [input_register(n) for n in range(i * 10, i * 10 + 10)]
            assert not client.write_registers(500 + 2 * i, [i, k], device_id=UNIT).isError()
            rr = client.read_holding_registers(500 + 2 * i, count=2, device_id=UNIT)
            assert rr.registers == [i, k]
    finally:
        client.close()


@pytest.mark.parametrize("kind", ["tcp", "udp"])
async def test_pymodbus_concurrent_clients(kind: str) -> None:
    context = make_context()
    serve, client_class = (
        (serve_tcp, ModbusTcpClient) if kind == "tcp" else (serve_udp, ModbusUdpClient)
    )
    with trio.fail_after(TIMEOUT):
        async with serve(context, port=0) as server:
            host, port = server.address
            async with trio.open_nursery() as nursery:
                for i in range(CLIENTS):
                    client = client_class(host, port=port, timeout=CLIENT_TIMEOUT, retries=0)
                    nursery.start_soon(
                        partial(trio.to_thread.run_sync, abandon_on_cancel=True),
                        busy_client,
                        client,
                        i,
                    )
            stats = server.statistics
            assert stats.requests == stats.responses == CLIENTS * ROUNDS * 3
            assert stats.datagrams_dropped == 0
    values = context[UNIT].getValues(3, 500, 2 * CLIENTS)
    assert values == [v for i in range(CLIENTS) for v in (i, ROUNDS - 1)]
