"""The TLS context of a Modbus/TCP Security server, for users who bring their own server."""

from __future__ import annotations

import os
import ssl

from trio_modbus._ssl import server_ssl_context

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
    return server_ssl_context(
        certfile,
        keyfile,
        password=password,
        cafile=cafile,
        require_client_cert=True,
        crlfile=crlfile,
    )
