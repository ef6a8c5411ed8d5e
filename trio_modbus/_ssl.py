"""The server ``ssl.SSLContext`` both TLS faces build: plain TLS and Modbus/TCP Security.

Stdlib only, below ``server/`` and ``security/`` (which may not import each other's way).
"""

from __future__ import annotations

import os
import ssl

from trio_modbus._errors import ConfigurationError

__all__ = ["server_ssl_context"]

FilePath = str | os.PathLike[str]


def _name(path: FilePath | None) -> str | None:
    return None if path is None else os.fspath(path)


def server_ssl_context(
    certfile: FilePath,
    keyfile: FilePath | None,
    *,
    password: str | None = None,
    cafile: FilePath | None = None,
    require_client_cert: bool = False,
    crlfile: FilePath | None = None,
) -> ssl.SSLContext:
    """A server context: TLS 1.2 or newer, no renegotiation, no compression.

    Client certificates are verified against ``cafile`` and required with
    ``require_client_cert``; ``crlfile`` adds revocation lists checked for each client's
    leaf certificate.

    Raises:
        ConfigurationError: A file is missing, unreadable or not what it should be (named).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
    try:
        ctx.load_cert_chain(certfile, keyfile, password)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"certfile={_name(certfile)!r} / keyfile={_name(keyfile)!r}: cannot load the "
            f"certificate and its key ({exc})"
        ) from exc
    if cafile is not None:
        _load_verify(ctx, "cafile", cafile, "CAs")
    if require_client_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
    if crlfile is not None:
        _load_verify(ctx, "crlfile", crlfile, "CRLs")
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return ctx


def _load_verify(ctx: ssl.SSLContext, option: str, path: FilePath, what: str) -> None:
    try:
        ctx.load_verify_locations(path)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"{option}={_name(path)!r}: cannot load the {what} ({exc})"
        ) from exc
