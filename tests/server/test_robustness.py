"""Edge cases of the connection loop and the serial reader, found in review.

* RTU over TCP: a long frame without a length rule ends where the client's bytes end, even when
  the server answers at most ``max_in_flight`` requests per send.
* The frame bound is held off while the server works on what it received.
* A custom function cannot take the server down with an over-long request or reply.
* Eviction prefers a connection whose frame has stalled, not one between two segments.
* A stopping serial server finishes the reply it is sending; a local-echo setting with an
  adapter that does not echo does not eat the next request.
"""

from __future__ import annotations

import os
import struct

import trio
import trio.testing

from trio_modbus.pdu.pdu import ModbusPDU
from trio_modbus.server import serve_serial, serve_tcp

from ._mb import (
    GatedService,
    MbapClient,
    PtyEnd,
    SlowService,
    adu,
    make_context,
    read_holding,
    registers_reply,
    rtu,
    wait_until,
)

QUIET = 0.1  # seconds of real time a "no reply" check listens to a serial line


def _echo_hiding_a_crc_match_before(limit: int) -> bytes:
    """An RTU frame of unit 1 carrying 08/0000 with 247 data bytes, whose bytes hold a CRC
    match (a shorter "frame") ending before byte ``limit``."""
    for seed in range(1_000_000):
        pdu = b"\x08\x00\x00" + struct.pack(">I", seed) + bytes(range(243))
        frame = rtu(1, pdu)
        if any(rtu(1, frame[1 : n - 2])[-2:] == frame[n - 2 : n] for n in range(6, limit)):
            return frame
    raise AssertionError("no such frame")  # pragma: no cover


async def test_rtu_over_tcp_ends_a_long_echo_where_the_client_bytes_end() -> None:
    # The server feeds the whole read to the framer and answers in batches of max_in_flight;
    # it used to feed 4 bytes per request there was room for (128 by default, 4 with
    # max_in_flight=1), and the end of such a piece was taken for the end of the echo. With a
    # request after it, the CRC match followed by a frame is the echo's end.
    frame = _echo_hiding_a_crc_match_before(100)
    for max_in_flight in (1, 32):
        with trio.fail_after(10):
            async with serve_tcp(
                make_context(), port=0, framer="rtu", max_in_flight=max_in_flight
            ) as server:
                stream = await trio.open_tcp_stream(*server.address)
                # Alone; then twice and another request, all in one piece.
                await stream.send_all(frame)
                got = b""
                while len(got) < len(frame):
                    got += await stream.receive_some()
                assert got == frame
                await stream.send_all(frame + frame + rtu(1, read_holding(0, 1)))
                expected = frame + frame + rtu(1, registers_reply([0]))
                got = b""
                while len(got) < len(expected):
                    got += await stream.receive_some()
                assert got == expected
                await stream.aclose()


async def test_the_frame_bound_does_not_count_the_server_s_own_work(
    autojump_clock: object,
) -> None:
    # A request split 5 + 7 bytes, 0.1 s apart, to a service that takes 2 s: the frame was
    # complete after 0.1 s, so the 1 s frame bound must not cancel its answer.
    server = serve_tcp(service=SlowService(make_context(), 2.0), frame_timeout=1.0)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MbapClient(client_stream)
    request = adu(1, 1, read_holding(0, 1))
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, server_stream)
            for _ in range(3):
                await client.send(request[:5])
                await trio.sleep(0.1)
                await client.send(request[5:])
                assert await client.read_frame() == (1, 1, registers_reply([0]))
            # A frame that really stalls is still closed at its bound.
            await client.send(request[:5])
            assert await client.expect_closed() == b""
    stats = server.statistics
    assert (stats.responses, stats.frame_timeouts, stats.idle_timeouts) == (3, 1, 0)


class Echo(ModbusPDU):
    """A user's function 0x41 that answers with the data it was sent."""

    function_code = 0x41

    def __init__(self) -> None:
        super().__init__()
        self.data = b""

    def decode(self, data: bytes) -> None:
        self.data = data

    def encode(self) -> bytes:
        return self.data

    async def datastore_update(self, context: object, device_id: int) -> ModbusPDU:
        return self


class Long(Echo):
    """A user's function 0x42 whose reply (300 bytes) cannot fit a PDU."""

    function_code = 0x42

    def encode(self) -> bytes:
        return bytes(300)


async def test_a_custom_function_cannot_take_the_server_down() -> None:
    with trio.fail_after(10):
        async with serve_tcp(make_context(), port=0, custom_functions=[Echo, Long]) as server:
            client = MbapClient(await trio.open_tcp_stream(*server.address))
            # A request past the PDU limit never reaches the custom decoder: 03.
            assert await client.request(1, 1, b"\x41" + bytes(254)) == b"\xc1\x03"
            assert await client.request(2, 1, b"\x41\x01\x02") == b"\x41\x01\x02"
            # A reply that cannot be framed: 04, logged; the server serves on.
            assert await client.request(3, 1, b"\x42") == b"\xc2\x04"
            assert await client.request(4, 1, read_holding(0, 1)) == registers_reply([0])
            await client.aclose()


async def test_eviction_prefers_a_stalled_frame_over_one_between_segments(
    autojump_clock: object,
) -> None:
    server = serve_tcp(make_context(), max_connections=2)
    streams = {name: trio.testing.memory_stream_pair() for name in ("idle", "trickler", "late")}
    clients = {name: MbapClient(pair[0]) for name, pair in streams.items()}
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            for name in ("idle", "trickler"):
                nursery.start_soon(server.handle_stream, streams[name][1])
            await trio.sleep(1)
            await clients["trickler"].send(adu(1, 1, read_holding(0, 1))[:5])
            await trio.sleep(0.5)
            # Half a second into its frame the trickler may just be between two segments:
            # the least recently active connection goes.
            assert server.listener.make_room(server)
            assert await clients["idle"].expect_closed() == b""
            nursery.start_soon(server.handle_stream, streams["late"][1])
            await trio.sleep(1)
            # Now its frame has stalled for 1.5 s: it goes before the idle newcomer.
            assert server.listener.make_room(server)
            assert await clients["trickler"].expect_closed() == b""
            assert await clients["late"].request(1, 1, read_holding(0, 1)) == registers_reply([0])
            nursery.cancel_scope.cancel()
    assert server.statistics.connections_evicted == 2


async def test_a_stopping_serial_server_finishes_the_reply_in_progress(socat_pair: object) -> None:
    service = GatedService(make_context(1, 2), gated_units=[2])
    with trio.fail_after(10):
        async with serve_serial(
            service=service,
            port=socat_pair.server,
            baudrate=115200,  # type: ignore[attr-defined]
        ) as server:
            await server.port_open.wait()
            client = PtyEnd(socat_pair.client)  # type: ignore[attr-defined]
            try:
                await client.write(rtu(2, read_holding(0, 1)))
                await wait_until(lambda: service.waiting == 1)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(server.shutdown, 30)
                    await trio.sleep(0)
                    assert server.running  # it waits for the reply
                    service.gate.set()
                assert await client.read(7) == rtu(2, registers_reply([0]))
                assert not server.running
            finally:
                client.close()


async def test_local_echo_expected_but_absent_does_not_eat_the_next_request(
    socat_pair: object,
) -> None:
    # handle_local_echo=True with a line that does not echo: the next request shares its first
    # bytes (unit, function) with our reply, and used to lose them as "echo".
    context = make_context(1)
    context[1].setValues(3, 0, [0x0102])
    with trio.fail_after(10):
        async with serve_serial(
            context,
            port=socat_pair.server,  # type: ignore[attr-defined]
            baudrate=115200,
            handle_local_echo=True,
        ) as server:
            await server.port_open.wait()
            client = PtyEnd(socat_pair.client)  # type: ignore[attr-defined]
            try:
                for _ in range(3):
                    await client.write(rtu(1, read_holding(0, 1)))
                    assert await client.read(7) == rtu(1, registers_reply([0x0102]))
                # The same request at once, in one piece with nothing between: still answered.
                await client.write(rtu(1, read_holding(0, 1)))
                assert await client.read(7) == rtu(1, registers_reply([0x0102]))
                assert await client.read_nothing_for(QUIET) == b""
            finally:
                client.close()
    assert os.path.exists(socat_pair.client)  # type: ignore[attr-defined]
