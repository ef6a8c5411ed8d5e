"""Clients refused during the TLS handshake get the alert that says why, and are counted."""

from __future__ import annotations

import ssl

import pytest
import trio

from trio_modbus import serve_mbaps
from trio_modbus.security import allow_authenticated

from .conftest import client_context, connect

V12, V13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3


def _server(pki, context, **options):
    return serve_mbaps(
        context,
        port=0,
        certfile=pki.server_cert,
        keyfile=pki.server_key,
        cafile=pki.ca,
        authorizer=allow_authenticated,
        **options,
    )


async def _refused(address, ctx) -> ssl.SSLError:
    """Connect, handshake, read: the SSLError the client gets (never a bare EOF)."""
    with pytest.raises(trio.BrokenResourceError) as info:
        async with connect(address, ctx) as client:
            # Under TLS 1.3 the client's handshake ends before the server has checked its
            # certificate: the refusal surfaces on the first read.
            await client.ask(1, bytes.fromhex("0300000001"))
    cause = info.value.__cause__
    assert isinstance(cause, ssl.SSLError), f"not an alert: {cause!r}"
    return cause


@pytest.mark.parametrize("version", [V12, V13], ids=["tls1.2", "tls1.3"])
@pytest.mark.parametrize(
    ("client", "alert", "reason"),
    [
        (None, {V12: "HANDSHAKE_FAILURE", V13: "CERTIFICATE_REQUIRED"}, "no-certificate"),
        ("stranger", "UNKNOWN_CA", "unknown-ca"),
        ("expired", "CERTIFICATE_EXPIRED", "expired"),
        ("notyet", "BAD_CERTIFICATE", "not-yet-valid"),
    ],
    ids=["no-certificate", "unknown-ca", "expired", "not-yet-valid"],
)
async def test_refused_with_alert(pki, context, version, client, alert, reason):
    if isinstance(alert, dict):
        alert = alert[version]
    async with _server(pki, context) as server:
        error = await _refused(server.address, client_context(pki, client, version=version))
        assert f"ALERT_{alert}" in str(error.reason), error
        stats = server.statistics
        assert stats.handshake_failures == 1
        assert dict(stats.handshake_failure_reasons) == {reason: 1}
        assert stats.connections_active == 0


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
async def test_tls11_refused_with_protocol_version_alert(pki, context):
    ctx = client_context(pki, "operator")
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    async with _server(pki, context) as server:
        error = await _refused(server.address, ctx)
        assert "PROTOCOL_VERSION" in str(error.reason) or "UNSUPPORTED" in str(error.reason), error
        assert dict(server.statistics.handshake_failure_reasons) == {"protocol-version": 1}


@pytest.mark.parametrize("version", [V12, V13], ids=["tls1.2", "tls1.3"])
async def test_revoked_certificate_refused_with_crlfile(pki, context, version):
    async with _server(pki, context, crlfile=pki.crl) as server:
        error = await _refused(server.address, client_context(pki, "revoked", version=version))
        assert "ALERT_CERTIFICATE_REVOKED" in str(error.reason), error
        assert dict(server.statistics.handshake_failure_reasons) == {"revoked": 1}
        # A certificate that is not on the list is served.
        async with connect(server.address, client_context(pki, "operator", version=version)) as c:
            assert (await c.ask(1, bytes.fromhex("0300000001")))[0] == 3


async def test_alert_reaches_a_tls13_client_that_is_already_sending(pki, context):
    """The server half-closes and drains: a reset would destroy the alert on its way."""
    flood = bytes.fromhex("000100000006010300000001") * 40_000  # 480 kB of requests
    async with _server(pki, context) as server:
        for _ in range(3):
            with pytest.raises(trio.BrokenResourceError) as info:
                async with connect(server.address, client_context(pki, None, version=V13)) as c:
                    await c.stream.send_all(flood)
                    await c.receive()
            assert isinstance(info.value.__cause__, ssl.SSLError), repr(info.value.__cause__)
            assert "CERTIFICATE_REQUIRED" in str(info.value.__cause__.reason)
        assert server.statistics.handshake_failures == 3
