"""Hypothesis: whatever PDU arrives, the executor answers with a well-formed reply or nothing.

The service must never raise, must reply with the request's function code (or that code with
bit 7 set and an exception code 01-04), must fit a reply in 253 bytes, and must only stay
silent in listen-only mode (or for the 08/04 that enters it).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_modbus.datastore import ModbusDeviceIdentification
from trio_modbus.pdu import FunctionCode
from trio_modbus.service import DatastoreService

from .._fuzz import fuzz_settings
from ._helpers import ask, block, device, service

FUZZ = fuzz_settings()

KNOWN_CODES = [int(fc) for fc in FunctionCode]

# Addresses and quantities near the edges of 100-entry blocks, so that many requests execute.
small_u16 = st.one_of(st.integers(0, 130), st.integers(0, 0xFFFF)).map(
    lambda v: v.to_bytes(2, "big")
)
pdus = st.one_of(
    st.binary(max_size=260),
    st.tuples(st.sampled_from(KNOWN_CODES), st.binary(max_size=254)).map(
        lambda t: bytes((t[0],)) + t[1]
    ),
    st.tuples(st.sampled_from(KNOWN_CODES), small_u16, small_u16, st.binary(max_size=40)).map(
        lambda t: bytes((t[0],)) + t[1] + t[2] + t[3]
    ),
)


def fresh_service() -> DatastoreService:
    identity = ModbusDeviceIdentification(info_name={"VendorName": "v" * 200, "ProductCode": "p"})
    dev = device(
        co=block(100),
        di=block(100),
        hr=block(100),
        ir=block(100),
        file_records={1: 100, 2: 0x2710},
        fifo_queues={0: [1, 2, 3], 1: list(range(40))},
    )
    return service(dev, identity=identity)


@pytest.mark.fuzz
@FUZZ
@given(st.lists(pdus, min_size=1, max_size=6))
async def test_every_pdu_gets_a_well_formed_reply_or_none(requests: list[bytes]) -> None:
    svc = fresh_service()
    for pdu in requests:
        was_listen_only = svc.diagnostics.listen_only
        reply = await ask(svc, pdu)
        if reply is None:
            assert was_listen_only or pdu[:5] == bytes.fromhex("08 00 04 00 00"), pdu.hex(" ")
            continue
        assert not was_listen_only
        assert 2 <= len(reply) <= 253
        fc = pdu[0] if pdu else 0
        if reply[0] & 0x80:
            assert reply[0] == (fc | 0x80) & 0xFF
            assert len(reply) == 2 and reply[1] in (1, 2, 3, 4), reply.hex(" ")
        else:
            assert reply[0] == fc
