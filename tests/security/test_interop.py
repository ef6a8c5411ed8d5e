"""Real clients against serve_mbaps: pymodbus's TLS client, and ``openssl s_client``."""

from __future__ import annotations

import ssl

import pytest
import trio
from pymodbus.client import ModbusTlsClient

from trio_modbus import serve_mbaps

from .._tools import require_tool
from .conftest import make_context

pytestmark = [pytest.mark.interop, pytest.mark.slow]

TIMEOUT = 20


def _server(pki, authorizer):
    return serve_mbaps(
        make_context(),
        port=0,
        certfile=pki.server_cert,
        keyfile=pki.server_key,
        cafile=pki.ca,
        authorizer=authorizer,
    )


async def test_pymodbus_tls_client_reaches_the_authorizer_with_its_role(pki):
    seen = []

    def authorizer(request):
        seen.append((request.role, request.function, request.unit))
        return request.function == 3  # reads allowed, the rest denied

    def talk(port: int) -> tuple[list[int], bool]:
        ctx = ssl.create_default_context(cafile=pki.ca)
        ctx.check_hostname = False  # pymodbus's sync client gives no server_hostname
        ctx.load_cert_chain(*pki.clients["operator"])
        client = ModbusTlsClient("127.0.0.1", port=port, sslctx=ctx, timeout=5, retries=0)
        assert client.connect()
        try:
            read = client.read_holding_registers(0, count=2, device_id=1)
            write = client.write_register(0, 5, device_id=1)
            return read.registers, write.isError() and write.exception_code == 1
        finally:
            client.close()

    with trio.fail_after(TIMEOUT):
        async with _server(pki, authorizer) as server:
            registers, refused = await trio.to_thread.run_sync(talk, server.address[1])
    assert registers == [1, 2]
    assert refused
    assert seen == [("operator", 3, 1), ("operator", 6, 1)]


async def test_openssl_s_client_without_certificate_is_refused(pki):
    openssl = require_tool("openssl")
    with trio.fail_after(TIMEOUT):
        async with _server(pki, lambda request: True) as server:
            port = server.address[1]
            result = await trio.run_process(
                [
                    openssl,
                    "s_client",
                    "-connect",
                    f"127.0.0.1:{port}",
                    "-CAfile",
                    pki.ca,
                    "-tls1_2",
                ],
                stdin=b"",
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
            while not server.statistics.handshake_failures:
                await trio.sleep(0.01)
            assert dict(server.statistics.handshake_failure_reasons) == {"no-certificate": 1}
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode != 0, output
    assert "alert handshake failure" in output or "alert certificate required" in output, output
