"""Modbus/TCP (and TLS) over real sockets on 127.0.0.1: pipelining, load, limits, protocol."""

from __future__ import annotations

import ssl
import struct

import pytest
import trio

from trio_modbus.server import serve_tcp, serve_tls

from .._tls import TlsFiles
from ._mb import (
    GatedService,
    MbapClient,
    adu,
    bits_of,
    connect,
    diagnostic,
    diagnostic_value,
    holding_values,
    make_context,
    mask_write,
    read_coils,
    read_holding,
    read_write,
    registers_of,
    registers_reply,
    wait_until,
    write_coils,
    write_register,
    write_registers,
)


async def test_ten_pipelined_requests_in_one_segment_get_ten_answers_in_order() -> None:
    context = make_context()
    context[1].setValues(3, 0, list(range(10, 20)))
    requests = [
        (0xFFFF, read_holding(0, 3), registers_reply([10, 11, 12])),
        (0, write_register(100, 0xABCD), write_register(100, 0xABCD)),
        (17, read_holding(100, 1), registers_reply([0xABCD])),  # sees the write before it
        (4242, write_registers(200, [1, 2, 3]), struct.pack(">BHH", 0x10, 200, 3)),
        (5, read_write(200, 3, 201, [9]), registers_reply([1, 9, 3], fc=0x17)),
        (6, mask_write(200, 0x00F0, 0x0005), mask_write(200, 0x00F0, 0x0005)),
        (7, read_holding(200, 1), registers_reply([5])),
        (8, write_coils(0, [True, False, True]), struct.pack(">BHH", 0x0F, 0, 3)),
        (9, read_coils(0, 3), b"\x01\x01\x05"),
        (10, read_holding(65535, 2), b"\x83\x02"),  # past the end: exception 02
    ]
    segment = b"".join(adu(tid, 1, pdu) for tid, pdu, _ in requests)
    with trio.fail_after(10):
        async with serve_tcp(context, port=0) as server:
            client = await connect(server.address[1])
            await client.send(segment)  # one send of 10 frames
            answers = await client.read_frames(10)
            assert answers == [(tid, 1, reply) for tid, _, reply in requests]
            assert server.statistics.requests == server.statistics.responses == 10
            await client.aclose()


async def test_a_burst_of_1000_connects_is_all_served(many_fds: int) -> None:
    count = 1000
    context = make_context()
    context[1].setValues(3, 0, list(range(count)))
    clients: list[MbapClient] = []
    with trio.fail_after(30):
        async with serve_tcp(context, port=0) as server:
            port = server.address[1]

            async def open_one() -> None:
                clients.append(await connect(port))

            # The burst: every connect at once; the listen backlog holds them until accepted.
            async with trio.open_nursery() as nursery:
                for _ in range(count):
                    nursery.start_soon(open_one)
            assert len(clients) == count

            async def ask(i: int, client: MbapClient) -> None:
                assert await client.request(i, 1, read_holding(i, 1)) == registers_reply([i])

            async with trio.open_nursery() as nursery:
                for i, client in enumerate(clients):
                    nursery.start_soon(ask, i, client)
            stats = server.statistics
            assert stats.connections_accepted == stats.connections_active == count
            assert stats.requests == stats.responses == count
            assert stats.connections_rejected == stats.connections_evicted == 0
            for client in clients:
                await client.aclose()
            await wait_until(lambda: server.statistics.connections_active == 0)


async def test_500_concurrent_connections_with_mixed_requests_stay_consistent(
    many_fds: int,
) -> None:
    count = 500
    rounds = 3
    context = make_context()
    clients: list[MbapClient] = []
    with trio.fail_after(30):
        async with serve_tcp(context, port=0) as server:
            port = server.address[1]

            async def open_one() -> None:
                clients.append(await connect(port))

            async with trio.open_nursery() as nursery:
                for _ in range(count):
                    nursery.start_soon(open_one)
            await wait_until(lambda: server.statistics.connections_active == count)

            async def session(i: int, client: MbapClient) -> None:
                base, coils = i * 16, i * 8  # each client has its own registers and coils
                tid = 0

                async def ask(pdu: bytes) -> bytes:
                    nonlocal tid
                    tid += 1
                    return await client.request(tid, 1, pdu)

                values = [(i * 31 + k) & 0xFFFF for k in range(8)]
                assert await ask(write_registers(base, values)) == struct.pack(
                    ">BHH", 0x10, base, 8
                )
                for r in range(rounds):
                    assert registers_of(await ask(read_holding(base, 8))) == values
                    single = (i * 7 + r) & 0xFFFF
                    assert await ask(write_register(base + 8, single)) == write_register(
                        base + 8, single
                    )
                    assert await ask(mask_write(base + 8, 0xFF00, 0x0012)) == mask_write(
                        base + 8, 0xFF00, 0x0012
                    )
                    masked = (single & 0xFF00) | 0x0012
                    reply = await ask(read_write(base + 8, 2, base + 9, [i + r]))
                    assert registers_of(reply) == [masked, i + r]
                    bits = [(i >> ((k + r) % 8)) & 1 == 1 for k in range(8)]
                    assert await ask(write_coils(coils, bits)) == struct.pack(
                        ">BHH", 0x0F, coils, 8
                    )
                    assert bits_of(await ask(read_coils(coils, 8)), 8) == bits
                    await trio.sleep(0)  # interleave the sessions a little more

            async with trio.open_nursery() as nursery:
                for i, client in enumerate(clients):
                    nursery.start_soon(session, i, client)
            per_client = 1 + rounds * 6
            stats = server.statistics
            assert stats.requests == stats.responses == count * per_client
            assert stats.connections_active == count
            for i in range(count):  # what each client left behind, read from the datastore
                base = i * 16
                values = [(i * 31 + k) & 0xFFFF for k in range(8)]
                last = (i * 7 + rounds - 1) & 0xFFFF
                assert holding_values(context, 1, base, 10) == [
                    *values,
                    (last & 0xFF00) | 0x0012,
                    i + rounds - 1,
                ]
            for client in clients:
                await client.aclose()


# -- connection limits ------------------------------------------------------------------------


async def test_at_the_limit_the_least_recently_active_idle_connection_is_evicted() -> None:
    with trio.fail_after(10):
        async with serve_tcp(make_context(), port=0, max_connections=2) as server:
            port = server.address[1]
            a = await connect(port)
            b = await connect(port)
            await wait_until(lambda: server.statistics.connections_active == 2)
            assert await a.request(1, 1, read_holding(0, 1)) == registers_reply([0])
            # b connected after a but has never been active: it is the one to go.
            c = await connect(port)
            assert await b.expect_closed() == b""
            assert await c.request(1, 1, read_holding(0, 1)) == registers_reply([0])
            assert await a.request(2, 1, read_holding(0, 1)) == registers_reply([0])
            # Now c is the least recently active.
            d = await connect(port)
            assert await c.expect_closed() == b""
            assert await d.request(1, 1, read_holding(0, 1)) == registers_reply([0])
            assert await a.request(3, 1, read_holding(0, 1)) == registers_reply([0])
            stats = server.statistics
            assert stats.connections_evicted == 2
            assert stats.connections_accepted == 4
            assert stats.connections_active == 2
            assert stats.connections_rejected == 0
            for client in (a, b, c, d):
                await client.aclose()


async def test_at_the_limit_busy_connections_are_not_evicted_so_the_new_one_is_refused() -> None:
    service = GatedService(make_context(1, 2), gated_units=[2])
    with trio.fail_after(10):
        async with serve_tcp(service=service, port=0, max_connections=2) as server:
            port = server.address[1]
            a = await connect(port)
            b = await connect(port)
            await a.send(adu(1, 2, read_holding(0, 1)))
            await b.send(adu(2, 2, read_holding(0, 1)))
            await wait_until(lambda: service.waiting == 2)
            c = await connect(port)
            assert await c.expect_closed() == b""
            stats = server.statistics
            assert (stats.connections_rejected, stats.connections_evicted) == (1, 0)
            service.gate.set()
            assert await a.read_frame() == (1, 2, registers_reply([0]))
            assert await b.read_frame() == (2, 2, registers_reply([0]))
            for client in (a, b, c):
                await client.aclose()


async def test_the_reject_policy_refuses_new_connections_at_the_limit() -> None:
    with trio.fail_after(10):
        async with serve_tcp(
            make_context(), port=0, max_connections=1, limit_policy="reject"
        ) as server:
            port = server.address[1]
            a = await connect(port)
            await wait_until(lambda: server.statistics.connections_active == 1)
            b = await connect(port)
            assert await b.expect_closed() == b""
            assert await a.request(1, 1, read_holding(0, 1)) == registers_reply([0])
            assert server.statistics.connections_rejected == 1
            assert server.statistics.connections_evicted == 0
            await a.aclose()
            await wait_until(lambda: server.statistics.connections_active == 0)
            c = await connect(port)  # room again
            assert await c.request(1, 1, read_holding(0, 1)) == registers_reply([0])
            for client in (b, c):
                await client.aclose()


# -- protocol --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        adu(2, 1, read_holding(0, 1), protocol=1),
        adu(2, 1, read_holding(0, 1), protocol=0xFFFF),
        adu(2, 1, b"", length=1),
        adu(2, 1, read_holding(0, 1), length=300),
        b"\x00\x02\x00\x07",  # protocol id 7: four bytes are enough to see it
    ],
    ids=["protocol-1", "protocol-ffff", "length-1", "length-300", "partial-header"],
)
async def test_a_malformed_mbap_header_closes_only_that_connection(bad: bytes) -> None:
    with trio.fail_after(10):
        async with serve_tcp(make_context(), port=0) as server:
            port = server.address[1]
            bad_client = await connect(port)
            good_client = await connect(port)
            # A good frame, then the bad header, in one segment: the good one is answered.
            await bad_client.send(adu(1, 1, read_holding(0, 1)) + bad)
            assert await bad_client.read_frame() == (1, 1, registers_reply([0]))
            assert await bad_client.expect_closed() == b""
            assert await good_client.request(9, 1, read_holding(0, 1)) == registers_reply([0])
            stats = server.statistics
            assert stats.protocol_errors == 1
            assert stats.connections_active == 1
            for client in (bad_client, good_client):
                await client.aclose()


async def test_a_unit_the_server_does_not_hold_gets_exception_0b() -> None:
    with trio.fail_after(10):
        async with serve_tcp(make_context(1), port=0) as server:
            client = await connect(server.address[1])
            await client.send(adu(1, 9, read_holding(0, 1)) + adu(2, 1, read_holding(0, 1)))
            assert await client.read_frames(2) == [
                (1, 9, b"\x83\x0b"),
                (2, 1, registers_reply([0])),
            ]
            await client.aclose()


async def test_ignore_missing_devices_leaves_a_unit_the_server_does_not_hold_unanswered() -> None:
    with trio.fail_after(10):
        async with serve_tcp(make_context(1), port=0, ignore_missing_devices=True) as server:
            client = await connect(server.address[1])
            await client.send(adu(1, 9, read_holding(0, 1)) + adu(2, 1, read_holding(0, 1)))
            assert await client.read_frame() == (2, 1, registers_reply([0]))
            assert await client.request(3, 1, read_holding(0, 1)) == registers_reply([0])
            assert server.statistics.requests == 3
            assert server.statistics.responses == 2
            await client.aclose()


async def test_diagnostic_counters_count_the_requests_of_every_connection() -> None:
    with trio.fail_after(10):
        async with serve_tcp(make_context(), port=0) as server:
            a = await connect(server.address[1])
            b = await connect(server.address[1])
            for tid in range(3):
                await a.request(tid, 1, read_holding(0, 1))
            assert await a.request(3, 1, read_holding(65535, 2)) == b"\x83\x02"
            for tid in range(2):
                await b.request(tid, 1, read_holding(0, 1))
            # 6 requests so far, and this one: the bus message count is 7.
            assert diagnostic_value(await a.request(4, 1, diagnostic(0x0B)), 0x0B) == 7
            assert diagnostic_value(await b.request(5, 1, diagnostic(0x0D)), 0x0D) == 1
            assert await a.request(6, 1, diagnostic(0x0A)) == diagnostic(0x0A)  # clear
            assert diagnostic_value(await b.request(7, 1, diagnostic(0x0B)), 0x0B) == 1
            assert diagnostic_value(await b.request(8, 1, diagnostic(0x0D)), 0x0D) == 0
            for client in (a, b):
                await client.aclose()


async def test_one_client_cannot_put_the_server_in_listen_only_mode_for_all() -> None:
    context = make_context()
    with trio.fail_after(10):
        async with serve_tcp(context, port=0) as server:
            a = await connect(server.address[1])
            b = await connect(server.address[1])
            # 08/04 over TCP is not supported by default: exception 01, and nothing changes.
            assert await a.request(1, 1, diagnostic(0x04)) == b"\x88\x01"
            assert not server.diagnostics.listen_only
            assert await b.request(1, 1, write_register(0, 7)) == write_register(0, 7)
            assert await a.request(2, 1, read_holding(0, 1)) == registers_reply([7])
            assert await b.request(2, 1, read_holding(0, 1)) == registers_reply([7])
            for client in (a, b):
                await client.aclose()


async def test_listen_only_mode_answers_and_executes_nothing_until_restart() -> None:
    # The serial-device behaviour, asked for on a TCP server (a serial device behind a gateway).
    context = make_context()
    with trio.fail_after(10):
        async with serve_tcp(context, port=0, network_listen_only=True) as server:
            client = await connect(server.address[1])
            await client.send(
                adu(1, 1, diagnostic(0x04))  # force listen-only: no reply
                + adu(2, 1, write_register(0, 7))  # neither executed nor answered
                + adu(3, 1, read_holding(0, 1))  # not answered
                + adu(4, 1, diagnostic(0x01))  # restart communications: ends it, unanswered
                + adu(5, 1, read_holding(0, 1))
            )
            assert await client.read_frame() == (5, 1, registers_reply([0]))
            assert holding_values(context, 1, 0, 1) == [0]
            assert server.statistics.requests == 5
            assert server.statistics.responses == 1
            await client.aclose()


async def test_trace_connect_sees_each_connection_open_and_close() -> None:
    events: list[bool] = []
    with trio.fail_after(10):
        async with serve_tcp(make_context(), port=0, trace_connect=events.append) as server:
            client = await connect(server.address[1])
            await client.request(1, 1, read_holding(0, 1))
            assert events == [True]
            await client.aclose()
            await wait_until(lambda: len(events) == 2)
            assert events == [True, False]
            client = await connect(server.address[1])
            await client.request(2, 1, read_holding(0, 1))
            assert events == [True, False, True]
        # Stopping the server closes the connection: the hook hears of it.
        assert events == [True, False, True, False]
        await client.aclose()


async def test_a_client_that_never_reads_does_not_stall_the_others() -> None:
    count = 40_000  # 10 MB of replies: more than the socket buffers hold
    with trio.fail_after(20):
        async with serve_tcp(make_context(), port=0) as server:
            port = server.address[1]
            stuck = await connect(port)
            flood = b"".join(adu(i & 0xFFFF, 1, read_holding(0, 125)) for i in range(count))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(stuck.send, flood)  # may block for good: cancelled below
                await wait_until(lambda: server.statistics.requests > 0)
                other = await connect(port)
                for tid in range(20):
                    assert await other.request(tid, 1, read_holding(0, 2)) == registers_reply(
                        [0, 0]
                    )
                # The stuck connection stopped being read: most of its flood is unparsed.
                assert server.statistics.requests < count // 2
                nursery.cancel_scope.cancel()
            await stuck.aclose()
            await wait_until(lambda: server.statistics.connections_active == 1)
            await other.aclose()


# -- TLS -------------------------------------------------------------------------------------


async def test_tls_serves_modbus_inside_tls_and_counts_failed_handshakes(
    tls_files: TlsFiles,
) -> None:
    cert, key = tls_files.server_cert, tls_files.server_key
    client_context = ssl.create_default_context(cafile=tls_files.ca)
    with trio.fail_after(10):
        async with serve_tls(make_context(), port=0, certfile=cert, keyfile=key) as server:
            port = server.address[1]
            assert port != 0
            plain = await connect(port)  # speaks MBAP without TLS: the handshake fails
            await plain.send(adu(1, 1, read_holding(0, 1)))
            assert await plain.expect_closed() == b""
            await plain.aclose()
            stream = await trio.open_ssl_over_tcp_stream(
                "127.0.0.1", port, ssl_context=client_context
            )
            client = MbapClient(stream)
            await client.send(adu(1, 1, read_holding(0, 1)) + adu(2, 1, read_holding(1, 2)))
            assert await client.read_frames(2) == [
                (1, 1, registers_reply([0])),
                (2, 1, registers_reply([0, 0])),
            ]
            stats = server.statistics
            assert stats.handshake_failures == 1
            assert stats.connections_active == 1
            await client.aclose()
