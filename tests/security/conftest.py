"""Fixtures of the security tests: the PKI, a datastore, a TLS Modbus client."""

from __future__ import annotations

import ssl
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from trio_modbus.datastore import (
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusServerContext,
)

from ._pki import Pki, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The PKI of the session (see ``_pki.py``)."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def make_context() -> ModbusServerContext:
    """Units 1 and 2, each with 100 coils, discrete inputs, holding and input registers."""

    def device() -> ModbusDeviceContext:
        return ModbusDeviceContext(
            co=ModbusSequentialDataBlock(0, [False] * 100),
            di=ModbusSequentialDataBlock(0, [False] * 100),
            hr=ModbusSequentialDataBlock(0, list(range(100))),
            ir=ModbusSequentialDataBlock(0, list(range(100))),
        )

    return ModbusServerContext(devices={1: device(), 2: device()}, single=False)


@pytest.fixture
def context() -> ModbusServerContext:
    """A fresh datastore: units 1 and 2 (see :func:`make_context`)."""
    return make_context()


def client_context(
    pki: Pki,
    name: str | None,
    *,
    version: ssl.TLSVersion | None = None,
    minimum: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    """A client TLS context trusting the test CA, with client ``name``'s certificate."""
    ctx = ssl.create_default_context(cafile=pki.ca)
    if name is not None:
        cert, key = pki.clients[name]
        ctx.load_cert_chain(cert, key)
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    if minimum is not None:
        ctx.minimum_version = minimum
    return ctx


class ModbusTlsClient:
    """A raw MBAP client over a ``trio.SSLStream``: send frames, read replies."""

    def __init__(self, stream: trio.SSLStream[trio.abc.Stream]) -> None:
        self.stream = stream
        self._buffer = b""

    async def send(self, tid: int, unit: int, pdu: bytes) -> None:
        """Send one request frame."""
        await self.stream.send_all(struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu)

    async def receive(self) -> tuple[int, int, bytes]:
        """One reply frame: (transaction id, unit id, PDU)."""
        while True:
            if len(self._buffer) >= 6:
                length = struct.unpack_from(">H", self._buffer, 4)[0]
                if len(self._buffer) >= 6 + length:
                    frame, self._buffer = self._buffer[: 6 + length], self._buffer[6 + length :]
                    tid, _, _, unit = struct.unpack_from(">HHHB", frame)
                    return tid, unit, frame[7:]
            data = await self.stream.receive_some(4096)
            if not data:
                raise EOFError("the server closed the connection")
            self._buffer += data

    async def ask(self, unit: int, pdu: bytes, tid: int = 1) -> bytes:
        """Send a request and return its reply's PDU."""
        await self.send(tid, unit, pdu)
        got_tid, got_unit, reply = await self.receive()
        assert (got_tid, got_unit) == (tid, unit)
        return reply


@asynccontextmanager
async def connect(
    address: tuple[str, int], ctx: ssl.SSLContext, *, session: ssl.SSLSession | None = None
) -> AsyncIterator[ModbusTlsClient]:
    """A handshaken TLS client connection to ``address``."""
    tcp = await trio.open_tcp_stream(*address)
    tls = trio.SSLStream(tcp, ctx, server_hostname="127.0.0.1", https_compatible=False)
    if session is not None:
        tls._ssl_object.session = session  # resume (trio has no public way to pass it)
    try:
        await tls.do_handshake()
        yield ModbusTlsClient(tls)
    finally:
        await trio.aclose_forcefully(tls)


ConnectFactory = Callable[..., object]


def policy_file(folder: Path, text: str, name: str = "roles.toml") -> Path:
    """Write a policy file and return its path."""
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path
