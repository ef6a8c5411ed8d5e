"""Modbus/TCP Security as a user's type checker sees it: checked by mypy, not run."""

from __future__ import annotations

from typing import assert_type

from trio_modbus import ModbusServerContext, serve_mbaps
from trio_modbus.security import (
    Access,
    AccessRequest,
    Policy,
    Span,
    allow_authenticated,
    extract_role,
    load_policy,
    mbaps_ssl_context,
)
from trio_modbus.server import TlsServer, serve_tls


def plain(request: AccessRequest) -> bool:
    return request.role == "operator" and Access.READ in request.access


async def remote(request: AccessRequest) -> bool:
    spans: tuple[Span, ...] = request.reads + request.writes
    return all(span.end < 100 for span in spans)


async def servers(context: ModbusServerContext) -> None:
    policy = load_policy("roles.toml")
    assert_type(policy, Policy)
    for authorizer in (plain, remote, policy, allow_authenticated):
        async with serve_mbaps(
            context,
            port=0,
            certfile="server.pem",
            keyfile="server.key",
            cafile="ca.pem",
            authorizer=authorizer,
            authorizer_timeout=0.5,
            invalid_role="null",
        ) as server:
            assert_type(server, TlsServer)
            server.set_authorizer(policy)
            reasons: dict[str, int] = dict(server.statistics.handshake_failure_reasons)
            assert reasons is not None
    ctx = mbaps_ssl_context("server.pem", "server.key", "ca.pem", crlfile="crl.pem")
    async with serve_tls(context, ssl_context=ctx, authorizer=plain) as tls:
        assert_type(tls, TlsServer)
    role = extract_role(b"")
    assert_type(role, str | None)
