"""Clients refused during the TLS handshake get the alert that says why, and are counted."""

from __future__ import annotations

import logging
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


def _one_root(tmp_path, client_cert, client_key, root):
    """Files of a PKI of one root CA: (server options, a client context for ``client_cert``)."""
    from ._pki import _key_pem, _pem, make_leaf

    server_cert, server_key = make_leaf(root, "server", server=True)
    files = {
        "ca.pem": _pem(root.cert),
        "server.pem": _pem(server_cert),
        "server.key": _key_pem(server_key),
        "client.pem": _pem(client_cert),
        "client.key": _key_pem(client_key),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    path = {name: str(tmp_path / name) for name in files}
    client = ssl.create_default_context(cafile=path["ca.pem"])
    client.load_cert_chain(path["client.pem"], path["client.key"])
    options = {"certfile": path["server.pem"], "keyfile": path["server.key"]}
    return {**options, "cafile": path["ca.pem"]}, client


async def test_a_subject_cryptography_cannot_read_closes_nothing_but_is_served(
    tmp_path, context, caplog
):
    """OpenSSL takes a subject in T61String with a Latin-1 byte; cryptography refuses to read
    it. The role is still read, the client served, and the server stays up for the next."""
    from ._pki import make_ca, make_leaf, resigned, role_extension, utf8_string

    root = make_ca("a root for one test")
    leaf, leaf_key = make_leaf(root, "ZZZZ", extensions=[role_extension(utf8_string("op"))])
    odd = resigned(root, leaf, b"\x0c\x04ZZZZ", b"\x14\x04Z\xe9ZZ")  # UTF8String -> T61String
    with pytest.raises(ValueError):
        odd.subject.rfc4514_string()
    options, client_ctx = _one_root(tmp_path, odd, leaf_key, root)
    seen = []

    def authorizer(request):
        seen.append(request.role)
        return True

    caplog.set_level(logging.INFO, "trio_modbus.security")
    async with serve_mbaps(context, port=0, authorizer=authorizer, **options) as server:
        with trio.fail_after(10):
            for _ in range(2):
                async with connect(server.address, client_ctx) as client:
                    reply = await client.ask(1, bytes.fromhex("0300000001"))
                    assert reply == bytes.fromhex("03020001")
    assert seen == ["op", "op"]
    assert "(unparsable subject)" in caplog.text


async def test_a_critical_role_extension_is_refused_by_openssl(tmp_path, context):
    """OpenSSL refuses a certificate with a critical extension it does not know (the role's):
    the documented advice is to issue roles non-critical."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    from ._pki import ROLE_OID, make_ca, make_leaf, utf8_string

    root = make_ca("a root for one test")
    leaf, key = make_leaf(root, "critical")
    critical = (
        x509.CertificateBuilder()
        .subject_name(leaf.subject)
        .issuer_name(root.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(leaf.not_valid_before_utc)
        .not_valid_after(leaf.not_valid_after_utc)
        .add_extension(
            x509.UnrecognizedExtension(ROLE_OID, utf8_string("op")),
            critical=True,
        )
        .sign(root.key, hashes.SHA256())
    )
    options, client_ctx = _one_root(tmp_path, critical, key, root)
    async with serve_mbaps(context, port=0, authorizer=allow_authenticated, **options) as server:
        with trio.fail_after(10):
            cause = await _refused(server.address, client_ctx)
    assert "CERTIFICATE_UNKNOWN" in str(cause) or "certificate unknown" in str(cause)
    assert dict(server.statistics.handshake_failure_reasons) == {"bad-certificate": 1}


async def test_a_silent_client_is_dropped_after_the_handshake_timeout(
    pki, context, autojump_clock
):
    async with _server(pki, context, handshake_timeout=0.3) as server:
        stream = await trio.open_tcp_stream(*server.address)
        start = trio.current_time()
        while await stream.receive_some(100):  # says nothing; the server closes
            pass
        assert trio.current_time() - start >= 0.3
        await stream.aclose()
        assert dict(server.statistics.handshake_failure_reasons) == {"timeout": 1}
