"""The fake device's service layer: records each request, applies faults and expectations."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from trio_modbus.pdu import DecodeResult, ExceptionResponse, Undecodable, encode_response
from trio_modbus.service import DatastoreService, RequestContext, Response, ServiceLayer

from . import faults as F
from ._recorder import RequestRecord
from ._wire import BUILD, Outgoing, current

if TYPE_CHECKING:
    from ._device import FakeDevice

__all__ = ["DeviceLayer"]

log = logging.getLogger("trio_modbus.testing")


class DeviceLayer(ServiceLayer):
    """The device's outermost layer: records each request and applies reply-level faults."""

    def __init__(self, inner: DatastoreService, device: FakeDevice) -> None:
        super().__init__(inner)
        self.device = device

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        device = self.device
        conn = current.get(None)
        session = conn.session if conn is not None else None
        frame = session.frame if session is not None else None
        kind = conn.kind if conn is not None else "socket"
        tid = frame.transaction_id if frame is not None else 0
        fc = request.function_code if not isinstance(request, Undecodable) else request.pdu[0]
        raw_in = b""
        if frame is not None:
            raw_in = BUILD[kind](frame.unit_id, frame.pdu, tid)
        device._seq += 1
        record = RequestRecord(
            seq=device._seq,
            time=trio.current_time(),
            connection=conn.number if conn is not None else 0,
            peer=ctx.peer,
            transport=conn.transport if conn is not None else "direct",
            transaction_id=tid,
            unit=ctx.unit_id,
            function_code=fc,
            request=request,
            raw_in=raw_in,
        )
        device.recorder.append(record)
        rule = device.faults.select(record)
        action = rule.action if rule is not None else None
        if rule is not None:
            record.faults.append(rule.label())
            record.rule_id = rule.id
            log.info(
                "request #%d (unit %d, fc %02X): fault %s",
                record.seq,
                record.unit,
                fc,
                rule.label(),
            )
        response: Response | None
        try:
            if action is not None and rule is not None and rule.phase == "before":
                response = await self._before(action, rule, request, ctx, record)
            else:
                response = await self._execute(request, ctx, record)
            if action is not None and rule is not None and rule.phase == "after":
                response = await self._after(action, rule, request, response)
        except BaseException:
            device.recorder.changed()
            raise
        if isinstance(action, F.NoReply):
            response = None
        stand_in = (
            action is not None
            and rule is not None
            and rule.phase == "before"
            and action.level == "bytes"
        )
        record.response = None if stand_in else response
        if response is not None and not ctx.broadcast and conn is not None:
            built = BUILD[kind](ctx.unit_id, encode_response(response), tid)
            byte_rule = rule if action is not None and action.level == "bytes" else None
            conn.outgoing.append(Outgoing(record, byte_rule, built))
        device.recorder.changed()
        return response

    async def _execute(
        self, request: DecodeResult, ctx: RequestContext, record: RequestRecord
    ) -> Response | None:
        """The answer of a matching expectation, else the datastore's."""
        device = self.device
        expectation = device.expectations.take(record)
        if expectation is None:
            if device.strict:
                device.expectations.unexpected.append(record)
        else:
            answer = expectation.answer(record)
            if answer is not None:
                return answer
        return await self.inner(request, ctx)

    async def _before(
        self,
        action: F.Fault,
        rule: F.Rule,
        request: DecodeResult,
        ctx: RequestContext,
        record: RequestRecord,
    ) -> Response | None:
        if isinstance(action, F.Delay):
            await trio.sleep(action.seconds + rule.rng.uniform(0, action.jitter))
            return await self._execute(request, ctx, record)
        if isinstance(action, F.ExceptionReply):
            return ExceptionResponse(record.function_code, action.code)  # type: ignore[arg-type]
        if isinstance(action, F.Substitute):
            return action.pdu
        if isinstance(action, F.NoReply):
            return None
        # Close, Reset, Garbage before execution: a stand-in reply, never sent as it is.
        return ExceptionResponse(record.function_code, 4)  # type: ignore[arg-type]

    async def _after(
        self, action: F.Fault, rule: F.Rule, request: DecodeResult, response: Response | None
    ) -> Response | None:
        if isinstance(action, F.Delay):
            await trio.sleep(action.seconds + rule.rng.uniform(0, action.jitter))
            return response
        if isinstance(action, F.ExceptionReply):
            fc = request.function_code if not isinstance(request, Undecodable) else request.pdu[0]
            return ExceptionResponse(fc, action.code)  # type: ignore[arg-type]
        if isinstance(action, F.Substitute):
            return action.pdu
        return response
