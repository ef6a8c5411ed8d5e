"""pymodbus's ModbusTlsServer takes the same security options."""

from __future__ import annotations

import trio

from trio_modbus.server import ModbusTlsServer

from .conftest import client_context, connect, make_context

READ = bytes.fromhex("0300000001")


async def test_modbus_tls_server_authorizes_by_role(pki):
    roles = []

    def authorizer(request):
        roles.append(request.role)
        return request.role == "operator"

    server = ModbusTlsServer(
        make_context(),
        address=("127.0.0.1", 0),
        certfile=pki.server_cert,
        keyfile=pki.server_key,
        cafile=pki.ca,
        authorizer=authorizer,
        authorizer_timeout=0.5,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve_forever)
        address = server.address
        async with connect(address, client_context(pki, "operator")) as c:
            assert (await c.ask(1, READ))[0] == 3
        async with connect(address, client_context(pki, "viewer")) as c:
            assert await c.ask(1, READ) == b"\x83\x01"
        server.set_authorizer(lambda request: True)
        async with connect(address, client_context(pki, "viewer")) as c:
            assert (await c.ask(1, READ))[0] == 3
        await server.shutdown()
    assert roles == ["operator", "viewer"]


def test_modbus_tls_server_refuses_mistakes_when_built(pki):
    import ssl

    import pytest

    from trio_modbus import ConfigurationError
    from trio_modbus.security import allow_authenticated, mbaps_ssl_context

    ready = mbaps_ssl_context(pki.server_cert, pki.server_key, pki.ca)
    with pytest.raises(ConfigurationError, match="crlfile would be ignored"):
        ModbusTlsServer(make_context(), sslctx=ready, crlfile=pki.crl)
    plain = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    plain.load_cert_chain(pki.server_cert, pki.server_key)
    with pytest.raises(ConfigurationError, match="needs client certificates"):
        ModbusTlsServer(make_context(), sslctx=plain, authorizer=allow_authenticated)
    with pytest.raises(ConfigurationError, match="authorizer must be callable"):
        ModbusTlsServer(make_context(), sslctx=ready, authorizer="operator")
    server = ModbusTlsServer(make_context(), sslctx=ready, authorizer=allow_authenticated)
    with pytest.raises(ConfigurationError, match="authorizer must be callable"):
        server.set_authorizer(None)
    assert server.authorizer is allow_authenticated  # unchanged
