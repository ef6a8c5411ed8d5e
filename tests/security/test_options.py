"""serve_mbaps's options and the context helper: every mistake is refused when built."""

from __future__ import annotations

import ssl

import pytest

from trio_modbus import ConfigurationError, serve_mbaps
from trio_modbus.security import allow_authenticated, mbaps_ssl_context
from trio_modbus.server import serve_tls

from .conftest import make_context


def _files(pki):
    return {"certfile": pki.server_cert, "keyfile": pki.server_key, "cafile": pki.ca}


def test_mbaps_ssl_context_has_the_security_rules(pki):
    ctx = mbaps_ssl_context(pki.server_cert, pki.server_key, pki.ca, crlfile=pki.crl)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.options & ssl.OP_NO_RENEGOTIATION
    assert ctx.verify_flags & ssl.VERIFY_CRL_CHECK_LEAF


@pytest.mark.parametrize("which", ["certfile", "cafile", "crlfile"])
def test_mbaps_ssl_context_names_a_bad_file(pki, tmp_path, which):
    files = {**_files(pki), "crlfile": pki.crl, which: str(tmp_path / "missing.pem")}
    with pytest.raises(ConfigurationError, match=f"{which}="):
        mbaps_ssl_context(
            files["certfile"], files["keyfile"], files["cafile"], crlfile=files["crlfile"]
        )


def test_authorizer_is_required_and_must_be_callable(pki):
    with pytest.raises(TypeError):
        serve_mbaps(make_context(), **_files(pki))  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match="authorizer must be callable"):
        serve_mbaps(make_context(), authorizer=None, **_files(pki))  # type: ignore[arg-type]


def test_serve_tls_authorizer_needs_client_certificates(pki):
    with pytest.raises(ConfigurationError, match="needs client certificates"):
        serve_tls(
            make_context(),
            require_client_cert=False,
            authorizer=allow_authenticated,
            **_files(pki),
        )
    server = serve_tls(make_context(), authorizer=allow_authenticated, **_files(pki))
    assert server.ssl_context.verify_mode == ssl.CERT_REQUIRED  # required by default then


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("invalid_role", "ignore", "invalid_role must be 'close' or 'null'"),
        ("authorizer_timeout", 0, "authorizer_timeout must be a positive number"),
        ("handshake_timeout", -1, "handshake_timeout"),
    ],
)
def test_bad_option_values(pki, option, value, message):
    with pytest.raises(ConfigurationError, match=message):
        serve_mbaps(
            make_context(), authorizer=allow_authenticated, **{option: value}, **_files(pki)
        )


def test_unknown_and_tls_only_options_are_refused(pki):
    with pytest.raises(TypeError, match="serve_mbaps"):
        serve_mbaps(
            make_context(),
            authorizer=allow_authenticated,
            require_client_cert=False,  # type: ignore[call-arg]
            **_files(pki),
        )


def test_set_authorizer_without_an_authorization_layer(pki):
    server = serve_tls(make_context(), **_files(pki))
    with pytest.raises(RuntimeError, match="no authorization layer"):
        server.set_authorizer(allow_authenticated)


def test_default_port_is_802(pki):
    server = serve_mbaps(make_context(), authorizer=allow_authenticated, **_files(pki))
    assert server.address[1] == 802


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_a_ready_context_with_an_authorizer_must_refuse_tls_below_1_2(pki):
    ctx = mbaps_ssl_context(pki.server_cert, pki.server_key, pki.ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ConfigurationError, match=r"TLS 1\.2 or newer.*TLSv1_1"):
        serve_tls(make_context(), ssl_context=ctx, authorizer=allow_authenticated)
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with pytest.raises(ConfigurationError, match=r"TLS 1\.2 or newer"):
        serve_tls(make_context(), ssl_context=ctx, authorizer=allow_authenticated)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    serve_tls(make_context(), ssl_context=ctx, authorizer=allow_authenticated)


@pytest.mark.parametrize(
    "option", ["certfile", "keyfile", "password", "cafile", "crlfile", "require_client_cert"]
)
def test_a_ready_context_refuses_the_options_it_would_ignore(pki, option):
    """A CRL (or a CA) given beside a ready context would silently not be checked."""
    ctx = mbaps_ssl_context(pki.server_cert, pki.server_key, pki.ca)
    value = {"password": "x", "require_client_cert": True}.get(option, pki.crl)
    with pytest.raises(ConfigurationError, match=f"ssl_context= is a ready context: {option}"):
        serve_tls(make_context(), ssl_context=ctx, **{option: value})
