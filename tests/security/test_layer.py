"""The authorization layer alone (no sockets): timing with trio's autojump clock."""

from __future__ import annotations

import logging
from typing import ClassVar

import pytest
import trio

from trio_modbus import ConfigurationError
from trio_modbus.datastore import DiagnosticState
from trio_modbus.pdu import ExceptionResponse, decode_request, encode_response
from trio_modbus.security import (
    Access,
    AccessRequest,
    AuthorizationLayer,
    Span,
    Table,
    describe_request,
)
from trio_modbus.service import RequestContext


class Inner:
    """A service that answers everything with b"ok" and counts its calls."""

    custom_functions: ClassVar[dict[int, type]] = {}
    diagnostics = DiagnosticState()

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, request, ctx):
        self.calls += 1
        return b"\x03ok"


READ = decode_request(bytes.fromhex("0300000002"))
CTX = RequestContext(1, peer=("10.0.0.1", 5000), role="op")


async def test_slow_async_authorizer_times_out(autojump_clock, caplog):
    async def slow(request):
        await trio.sleep(10)
        return True

    inner = Inner()
    layer = AuthorizationLayer(inner, slow, timeout=2)
    start = trio.current_time()
    assert await layer(READ, CTX) == ExceptionResponse(3, 1)
    assert trio.current_time() - start == 2
    assert inner.calls == 0
    assert layer.counters.authorizer_errors == 1
    assert [r.levelname for r in caplog.records] == ["ERROR", "WARNING"]


async def test_fast_async_authorizer_allows(autojump_clock):
    async def quick(request):
        await trio.sleep(0.5)
        return True

    inner = Inner()
    layer = AuthorizationLayer(inner, quick, timeout=1)
    assert await layer(READ, CTX) == b"\x03ok"
    assert inner.calls == 1


async def test_only_true_allows():
    for verdict in (1, "yes", None, [True]):
        layer = AuthorizationLayer(Inner(), lambda r, v=verdict: v)
        assert await layer(READ, CTX) == ExceptionResponse(3, 1)


async def test_denial_log_is_rate_limited_per_connection(autojump_clock, caplog):
    caplog.set_level(logging.WARNING, "trio_modbus.security")
    layer = AuthorizationLayer(Inner(), lambda r: False, log_burst=3, log_interval=60)
    for _ in range(100):
        await layer(READ, CTX)
    assert len(caplog.records) == 3  # the burst; the rest waits for the summary
    await trio.sleep(61)
    await layer(READ, CTX)
    assert len(caplog.records) == 4
    assert "denied 98 more requests" in caplog.records[-1].getMessage()
    other = RequestContext(1, peer=("10.0.0.2", 5000), role="op")
    await layer(READ, other)  # another connection has its own burst
    assert len(caplog.records) == 5
    assert layer.counters.authorization_denials == 102


def test_describe_request_derives_spans_from_the_request():
    def describe(pdu_hex, ctx=CTX):
        return describe_request(decode_request(bytes.fromhex(pdu_hex)), ctx)

    rw = describe("17 0000 0002 000A 0001 02 1234")
    assert rw.access == {Access.READ, Access.WRITE}
    assert rw.reads == (Span(Table.HOLDING_REGISTERS, 0, 2),)
    assert rw.writes == (Span(Table.HOLDING_REGISTERS, 10, 1),)
    coils = describe("0F 0010 000A 02 FF03")
    assert coils.writes == (Span(Table.COILS, 16, 10),) and coils.access == {Access.WRITE}
    assert describe("02 0005 0003").reads == (Span(Table.DISCRETE_INPUTS, 5, 3),)
    assert describe("04 0005 0003").reads == (Span(Table.INPUT_REGISTERS, 5, 3),)
    assert describe("16 0004 00F2 0025").writes == (Span(Table.HOLDING_REGISTERS, 4, 1),)
    listen = describe("08 0004 0000")
    assert (listen.access, listen.sub_function) == ({Access.ADMIN}, 4)
    echo = describe("08 0000 1234")
    assert (echo.access, echo.sub_function) == ({Access.DIAGNOSE}, 0)
    assert describe("2B 0E 01 00").access == {Access.IDENTIFY}
    assert describe("11").access == {Access.IDENTIFY}
    assert describe("0B").access == {Access.DIAGNOSE}
    assert describe("FFFF") is None  # undecodable: never authorized
    fifo = describe("18 FFF0")
    assert fifo.reads == (Span(Table.HOLDING_REGISTERS, 0xFFF0, 16),)  # clipped at 65535
    assert isinstance(rw, AccessRequest) and rw.role == "op" and rw.unit == 1


async def test_undecodable_is_answered_by_the_layer_never_by_inner():
    """Not authorized (it cannot be described), and never passed on: inner's unit check
    would tell a client allowed nothing which units exist."""
    inner = Inner()
    calls = []
    layer = AuthorizationLayer(inner, lambda r: calls.append(r) or False)
    answer = await layer(decode_request(bytes.fromhex("0300000000")), CTX)  # quantity 0
    assert encode_response(answer) == bytes.fromhex("8303")
    answer = await layer(decode_request(bytes.fromhex("41")), CTX)  # an unknown function
    assert encode_response(answer) == bytes.fromhex("C101")
    broadcast = RequestContext(0, broadcast=True, role="op")
    assert await layer(decode_request(bytes.fromhex("41")), broadcast) is None
    assert inner.calls == 0 and calls == []


async def test_nothing_is_answered_in_listen_only_mode():
    """The spec: in listen-only mode the server answers nothing, denials included."""
    inner = Inner()
    inner.diagnostics = DiagnosticState()  # this server's own
    inner.diagnostics.enter_listen_only()
    layer = AuthorizationLayer(inner, lambda r: False)
    assert await layer(READ, CTX) is None
    assert await layer(decode_request(bytes.fromhex("41")), CTX) is None
    assert layer.counters.authorization_denials == 1 and inner.calls == 0


def test_a_timeout_must_be_a_finite_positive_number():
    for bad in (0, -1, float("nan"), float("inf"), True, "1"):
        with pytest.raises(ConfigurationError, match="authorizer_timeout"):
            AuthorizationLayer(Inner(), lambda r: True, timeout=bad)


async def test_an_inner_service_without_diagnostics_is_authorized_as_any():
    """A user's own service need not keep diagnostics: the layer then never falls silent."""

    async def service(request, ctx):
        return b"\x03\x02\x00\x07"

    layer = AuthorizationLayer(service, lambda r: r.role == "op")
    assert await layer(READ, CTX) == b"\x03\x02\x00\x07"
    denied = RequestContext(1, role="viewer")
    assert encode_response(await layer(READ, denied)) == bytes.fromhex("8301")
    assert encode_response(await layer(decode_request(bytes.fromhex("41")), CTX)) == bytes.fromhex(
        "C101"
    )
