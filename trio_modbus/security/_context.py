"""The TLS context of a Modbus/TCP Security server, for users who bring their own server."""

from __future__ import annotations

import os
import ssl

from trio_modbus._errors import ConfigurationError

__all__ = ["mbaps_ssl_context"]


def mbaps_ssl_context(
    certfile: str | os.PathLike[str],
    keyfile: str | os.PathLike[str] | None,
    cafile: str | os.PathLike[str],
    *,
    crlfile: str | os.PathLike[str] | None = None,
    password: str | None = None,
) -> ssl.SSLContext:
    """A server ``ssl.SSLContext`` with the Modbus/TCP Security rules.

    TLS 1.2 or newer only; a client certificate is always required and verified against the
    CAs of ``cafile`` (a chain with intermediates the client sends is followed to them);
    renegotiation is off; session resumption (session ids and TLS 1.3 tickets) works.

    Args:
        certfile: PEM file with the server certificate (and its chain; and the key, unless
            ``keyfile``).
        keyfile: PEM file with the server's private key.
        cafile: PEM file of the CAs that sign client certificates.
        crlfile: PEM file of certificate revocation lists; when given, each client's leaf
            certificate is checked against them (its CA's CRL must be there).
        password: Password of the key, if encrypted.

    Returns:
        The context.

    Raises:
        ConfigurationError: A file is missing, unreadable or not what it should be (named).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.load_cert_chain(certfile, keyfile, password)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"certfile={os.fspath(certfile)!r} / keyfile="
            f"{None if keyfile is None else os.fspath(keyfile)!r}: cannot load the "
            f"certificate and its key ({exc})"
        ) from exc
    try:
        ctx.load_verify_locations(cafile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"cafile={os.fspath(cafile)!r}: cannot load the CAs ({exc})"
        ) from exc
    if crlfile is not None:
        try:
            ctx.load_verify_locations(crlfile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"crlfile={os.fspath(crlfile)!r}: cannot load the CRLs ({exc})"
            ) from exc
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return ctx
