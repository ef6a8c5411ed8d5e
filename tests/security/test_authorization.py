"""Requests authorized by the role of the client's certificate, over real TLS connections."""

from __future__ import annotations

import hashlib
import logging
import ssl
import struct
import tomllib
from contextlib import asynccontextmanager

import pytest
import trio
from cryptography.hazmat.primitives.serialization import Encoding

from trio_modbus import serve_mbaps
from trio_modbus.security import Access, AccessRequest, Policy, Span, Table

from ._policies import POLICY
from .conftest import client_context, connect, make_context

V12, V13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3


def policy(text: str = POLICY) -> Policy:
    return Policy.from_mapping(tomllib.loads(text), source="test.toml")


@asynccontextmanager
async def mbaps(pki, authorizer, context=None, **options):
    async with serve_mbaps(
        context or make_context(),
        port=0,
        certfile=pki.server_cert,
        keyfile=pki.server_key,
        cafile=pki.ca,
        authorizer=authorizer,
        **options,
    ) as server:
        yield server


def read_hr(address: int, count: int = 1) -> bytes:
    return struct.pack(">BHH", 3, address, count)


def read_ir(address: int, count: int = 1) -> bytes:
    return struct.pack(">BHH", 4, address, count)


def write_hr(address: int, value: int = 7) -> bytes:
    return struct.pack(">BHH", 6, address, value)


def write_hrs(address: int, count: int) -> bytes:
    return struct.pack(">BHHB", 16, address, count, 2 * count) + b"\x00\x01" * count


def write_coil(address: int) -> bytes:
    return struct.pack(">BHH", 5, address, 0xFF00)


def read_write(read_at: int, write_at: int) -> bytes:
    return struct.pack(">BHHHHB", 0x17, read_at, 1, write_at, 1, 2) + b"\x12\x34"


def diag(sub: int, data: int = 0) -> bytes:
    return struct.pack(">BHH", 8, sub, data)


OK = "ok"


def outcome(pdu: bytes, reply: bytes) -> str:
    """``ok`` for a normal answer, else the exception code as two hex digits."""
    if reply[0] == pdu[0] | 0x80:
        return f"{reply[1]:02X}"
    assert reply[0] == pdu[0], reply
    return OK


MATRIX = [
    # client, unit, request, outcome
    ("operator", 1, read_hr(0, 2), OK),
    ("operator", 1, read_hr(48, 2), OK),  # 48..49: the last two of its range
    ("operator", 1, read_hr(49, 2), "01"),  # 49..50 runs past it
    ("operator", 2, read_hr(0), "01"),  # a unit it has no rights on
    ("operator", 9, read_hr(0), "01"),  # a unit that does not exist: still 01, not 0B
    ("operator", 1, read_hr(60000), "01"),  # an address that does not exist: still 01
    ("operator", 1, write_hr(10), OK),
    ("operator", 1, write_hrs(45, 5), OK),
    ("operator", 1, write_hrs(45, 6), "01"),
    ("operator", 1, write_coil(3), OK),
    ("operator", 1, write_coil(16), "01"),
    ("operator", 1, read_ir(0), "01"),  # no input-register range
    ("operator", 1, diag(0, 0x1234), "01"),  # no diagnose access
    ("viewer", 2, read_hr(90, 5), OK),
    ("viewer", 1, read_ir(0, 3), OK),
    ("viewer", 1, write_hr(0), "01"),
    ("viewer", 1, diag(0, 0x1234), OK),
    ("viewer", 1, bytes.fromhex("11"), "01"),  # no identify access
    ("viewer", 1, bytes.fromhex("2B0E0100"), "01"),
    ("viewer", 1, bytes.fromhex("42"), "01"),  # an unknown function: 01 as always
    ("admin", 1, read_hr(500), "02"),  # allowed: the datastore's own answer
    ("admin", 9, read_hr(0), "0B"),  # allowed: the unit does not exist
    ("admin", 1, read_hr(0, 200), "03"),  # undecodable (quantity): answered as without authz
    ("admin", 1, bytes.fromhex("2B0E0100"), OK),
    ("admin", 1, write_hr(99), "02"),  # allowed, past the datastore: its own 02
    ("long", 1, read_hr(0), OK),  # a 200-character role matches exactly
    ("unicode", 1, read_hr(0), OK),  # a non-ASCII role matches exactly
    ("trailing", 1, read_hr(0), "01"),  # "operator " is not "operator"
    ("upper", 1, read_hr(0), "01"),  # "Operator" is not "operator"
    ("norole", 1, read_hr(0), "01"),  # NULL role, null_role = "deny"
    ("norole", 1, read_ir(0), "01"),
]


@pytest.mark.parametrize("version", [V12, V13], ids=["tls1.2", "tls1.3"])
async def test_role_function_span_unit_matrix(pki, version):
    async with mbaps(pki, policy()) as server:
        by_client: dict[str, list[tuple[int, bytes, str]]] = {}
        for client, unit, pdu, expected in MATRIX:
            by_client.setdefault(client, []).append((unit, pdu, expected))
        got = []
        want = []
        for client, cases in by_client.items():
            async with connect(server.address, client_context(pki, client, version=version)) as c:
                for unit, pdu, expected in cases:
                    got.append((client, unit, pdu.hex(), outcome(pdu, await c.ask(unit, pdu))))
                    want.append((client, unit, pdu.hex(), expected))
        assert got == want
        denied = sum(1 for *_, e in MATRIX if e == "01") - 1  # 0x42 is undecodable, not denied
        assert server.statistics.authorization_denials == denied


async def test_null_role_reaches_the_authorizer(pki):
    seen: list[AccessRequest] = []

    def authorizer(request: AccessRequest) -> bool:
        seen.append(request)
        return True

    async with (
        mbaps(pki, authorizer) as server,
        connect(server.address, client_context(pki, "norole")) as c,
    ):
        assert outcome(read_hr(1, 2), await c.ask(1, read_hr(1, 2))) == OK
    (request,) = seen
    assert request.role is None
    assert request.unit == 1 and request.function == 3 and request.sub_function is None
    assert request.access == {Access.READ}
    assert request.reads == (Span(Table.HOLDING_REGISTERS, 1, 2),)
    assert request.writes == ()
    assert request.certificate == pki.certs["norole"].public_bytes(Encoding.DER)


async def test_null_role_as_pseudo_role(pki):
    text = POLICY.replace('null_role = "deny"', 'null_role = "guest"')
    async with (
        mbaps(pki, policy(text)) as server,
        connect(server.address, client_context(pki, "norole")) as c,
    ):
        assert outcome(read_ir(0, 2), await c.ask(1, read_ir(0, 2))) == OK  # guest's rights
        assert outcome(read_hr(0), await c.ask(1, read_hr(0))) == "01"
        assert outcome(read_ir(10), await c.ask(1, read_ir(10))) == "01"


async def test_null_role_deny_answers_every_request_01(pki):
    requests = [read_hr(0), read_ir(0), write_hr(0), write_coil(0), diag(0), b"\x11", b"\x07"]
    async with (
        mbaps(pki, policy()) as server,
        connect(server.address, client_context(pki, "norole")) as c,
    ):
        for pdu in requests:
            assert await c.ask(1, pdu) == bytes((pdu[0] | 0x80, 1))


RW_POLICY = """
[roles.operator]
[[roles.operator.allow]]
units = [1]
access = ["read"]
holding_registers = [[0, 9]]
[[roles.operator.allow]]
units = [1]
access = ["write"]
holding_registers = [[10, 19]]
"""


async def test_read_write_needs_both_spans(pki):
    context = make_context()
    async with (
        mbaps(pki, policy(RW_POLICY), context) as server,
        connect(server.address, client_context(pki, "operator")) as c,
    ):
        assert outcome(read_write(0, 10), await c.ask(1, read_write(0, 10))) == OK
        # read allowed, write denied; and the reverse
        assert await c.ask(1, read_write(0, 0)) == b"\x97\x01"
        assert await c.ask(1, read_write(10, 10)) == b"\x97\x01"
    values = context[1].getValues(3, 0, 20)
    assert values[10] == 0x1234  # the allowed write
    assert values[0] == make_context()[1].getValues(3, 0, 1)[0]  # the denied one did not


async def test_force_listen_only_denied_leaves_the_server_answering(pki):
    async with mbaps(pki, policy(), network_listen_only=True) as server:
        async with connect(server.address, client_context(pki, "viewer")) as c:
            assert await c.ask(1, diag(4)) == b"\x88\x01"
            assert not server.diagnostics.listen_only
            assert outcome(read_hr(0), await c.ask(1, read_hr(0))) == OK
        async with connect(server.address, client_context(pki, "admin")) as c:
            await c.send(1, 1, diag(4))  # allowed: no reply, listen-only from now on
            with trio.fail_after(5):
                while not server.diagnostics.listen_only:
                    await trio.sleep(0.001)


async def test_pipelined_allowed_denied_allowed(pki):
    async with (
        mbaps(pki, policy()) as server,
        connect(server.address, client_context(pki, "operator")) as c,
    ):
        frames = b"".join(
            struct.pack(">HHHB", tid, 0, len(pdu) + 1, 1) + pdu
            for tid, pdu in ((11, read_hr(0)), (12, read_hr(80)), (13, read_hr(1)))
        )
        await c.stream.send_all(frames)
        replies = [await c.receive() for _ in range(3)]
    assert [(tid, outcome(read_hr(0), pdu)) for tid, _, pdu in replies] == [
        (11, OK),
        (12, "01"),
        (13, OK),
    ]


async def test_broadcast_denied_gets_no_reply(pki):
    async with mbaps(pki, policy(), broadcast=True) as server:
        async with connect(server.address, client_context(pki, "viewer")) as c:
            before = await c.ask(1, read_hr(0), tid=1)
            await c.send(2, 0, write_hr(0, 0x4242))  # a broadcast write: denied, unanswered
            after = await c.ask(1, read_hr(0), tid=3)  # the next reply is the read's
            assert outcome(read_hr(0), after) == OK
            assert after == before  # and the write was not executed
        assert server.statistics.authorization_denials == 1


@pytest.mark.parametrize("name", ["duplicate", "printable", "baddern", "badder_long", "badutf8"])
async def test_invalid_role_closes_the_connection(pki, name, caplog):
    caplog.set_level(logging.WARNING, "trio_modbus.security")
    async with mbaps(pki, policy()) as server:
        with pytest.raises((EOFError, trio.BrokenResourceError)):
            async with connect(server.address, client_context(pki, name)) as c:
                await c.ask(1, read_hr(0))
        assert server.statistics.invalid_roles == 1
        assert server.statistics.authorization_denials == 0
    assert any("invalid role" in r.getMessage() for r in caplog.records)


async def test_invalid_role_served_as_null_when_asked(pki):
    seen = []

    def authorizer(request):
        seen.append(request.role)
        return True

    async with mbaps(pki, authorizer, invalid_role="null") as server:
        async with connect(server.address, client_context(pki, "duplicate")) as c:
            assert outcome(read_hr(0), await c.ask(1, read_hr(0))) == OK
        assert server.statistics.invalid_roles == 1
    assert seen == [None]


@pytest.mark.parametrize("version", [V12, V13], ids=["tls1.2", "tls1.3"])
async def test_session_resumption_keeps_the_role(pki, caplog, version):
    caplog.set_level(logging.INFO, "trio_modbus.security")
    seen = []

    def authorizer(request):
        seen.append((request.role, request.certificate))
        return True

    ctx = client_context(pki, "operator", version=version)
    async with mbaps(pki, authorizer) as server:
        async with connect(server.address, ctx) as c:
            await c.ask(1, read_hr(0))
            session = c.stream._ssl_object.session
            assert not c.stream.session_reused
        async with connect(server.address, ctx, session=session) as c:
            await c.ask(1, read_hr(0))
            assert c.stream.session_reused
    der = pki.certs["operator"].public_bytes(Encoding.DER)
    assert seen == [("operator", der), ("operator", der)]
    starts = [r.getMessage() for r in caplog.records if "session started" in r.getMessage()]
    fingerprint = hashlib.sha256(der).hexdigest()
    assert len(starts) == 2
    assert all("CN=client operator" in m and fingerprint in m for m in starts)
    assert all("role 'operator'" in m for m in starts)
    assert "(resumed)" in starts[1] and "(resumed)" not in starts[0]


async def test_policy_swap_while_serving(pki):
    """In-flight requests finish with the old authorizer; new ones get the new policy."""
    entered = trio.Event()
    release = trio.Event()

    async def slow_allow(request):
        entered.set()
        await release.wait()
        return True

    deny_all = policy(
        POLICY.replace("[roles.operator]", "[roles.nobody]").replace(
            "roles.operator.allow", "roles.nobody.allow"
        )
    )
    async with mbaps(pki, slow_allow, authorizer_timeout=30) as server:
        ctx = client_context(pki, "operator")
        async with connect(server.address, ctx) as first, connect(server.address, ctx) as second:
            async with trio.open_nursery() as nursery:
                replies = []

                async def in_flight():
                    replies.append(await first.ask(1, read_hr(0)))

                nursery.start_soon(in_flight)
                await entered.wait()
                server.set_authorizer(deny_all)
                assert await second.ask(1, read_hr(0)) == b"\x83\x01"  # the new policy
                release.set()
            assert outcome(read_hr(0), replies[0]) == OK  # finished with the old authorizer
            assert await first.ask(1, read_hr(0), tid=2) == b"\x83\x01"


async def test_authorizer_that_raises_denies_and_logs(pki, caplog):
    def broken(request):
        raise RuntimeError("policy database unreachable")

    async with mbaps(pki, broken) as server:
        async with connect(server.address, client_context(pki, "operator")) as c:
            assert await c.ask(1, read_hr(0)) == b"\x83\x01"
        assert server.statistics.authorizer_errors == 1
        assert server.statistics.authorization_denials == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and errors[0].name == "trio_modbus.security"
    assert "failed" in errors[0].getMessage()


async def test_authorizer_that_times_out_denies_and_logs(pki, caplog):
    async def stuck(request):
        await trio.sleep_forever()

    async with mbaps(pki, stuck, authorizer_timeout=0.05) as server:
        async with connect(server.address, client_context(pki, "operator")) as c:
            assert await c.ask(1, read_hr(0)) == b"\x83\x01"
        assert server.statistics.authorizer_errors == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and errors[0].name == "trio_modbus.security"
    assert "took more than" in errors[0].getMessage()


async def test_a_thousand_denials_few_log_records_exact_counter(pki, caplog):
    caplog.set_level(logging.WARNING, "trio_modbus.security")
    async with mbaps(pki, policy()) as server:
        async with connect(server.address, client_context(pki, "viewer")) as c:
            frames = b"".join(
                struct.pack(">HHHB", tid, 0, 6, 1) + write_hr(0) for tid in range(1000)
            )
            await c.stream.send_all(frames)
            replies = [await c.receive() for _ in range(1000)]
        assert [tid for tid, _, _ in replies] == list(range(1000))
        assert {pdu for _, _, pdu in replies} == {b"\x86\x01"}
        assert server.statistics.authorization_denials == 1000
    denials = [r for r in caplog.records if "denied" in r.getMessage()]
    assert 1 <= len(denials) <= 10


async def test_lane_is_off_with_an_authorizer(pki):
    """The fast lane would answer reads without asking: with an authorizer it never runs."""
    calls = []

    def authorizer(request):
        calls.append(request.function)
        return True

    async with (
        mbaps(pki, authorizer) as server,
        connect(server.address, client_context(pki, "operator")) as c,
    ):
        for tid in range(5):
            await c.ask(1, read_hr(0), tid=tid)
    assert calls == [3] * 5
