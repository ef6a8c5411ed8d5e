"""The serial-line and identification function group: FC 07, 08, 0B, 0C, 11 and 2B / 0E.

These handlers answer from the server's own state (its :class:`DiagnosticState` and
identity), not from a device context. They read that state from the service at call time, so
they are bound to it (:func:`diagnostic_handlers`); the event-log bytes themselves are built
by ``DiagnosticState`` alone.
"""

from __future__ import annotations

import struct
from functools import partial
from typing import Protocol

from trio_modbus.datastore import DiagnosticState, ModbusDeviceIdentification
from trio_modbus.pdu import responses as enc
from trio_modbus.pdu.codec import MAX_PDU_SIZE
from trio_modbus.pdu.codes import DiagnosticSubFunction, ExceptionCode, FunctionCode
from trio_modbus.pdu.pdu import ExceptionResponse
from trio_modbus.pdu.requests import (
    DiagnosticRequest,
    GetCommEventCounterRequest,
    GetCommEventLogRequest,
    ReadDeviceIdentificationRequest,
    ReadExceptionStatusRequest,
    ReportServerIdRequest,
)

from ._context import Handler, RequestContext, Response

DEFAULT_SERVER_ID = b"trio_modbus"  # 0x11 server id when the identity has no basic objects

_ILLEGAL_FUNCTION = ExceptionCode.ILLEGAL_FUNCTION
_ILLEGAL_ADDRESS = ExceptionCode.ILLEGAL_DATA_ADDRESS
_U16 = struct.Struct(">H")


class ServerState(Protocol):
    """What these handlers read of the service: the server's own state and options."""

    @property
    def diagnostics(self) -> DiagnosticState: ...
    @property
    def identity(self) -> ModbusDeviceIdentification: ...
    @property
    def network_listen_only(self) -> bool: ...


def _read_exception_status(
    state: ServerState, req: ReadExceptionStatusRequest, device: object, _: RequestContext
) -> Response:
    return enc.encode_exception_status(state.diagnostics.exception_status)


def _comm_event_counter(
    state: ServerState, req: GetCommEventCounterRequest, device: object, _: RequestContext
) -> Response:
    return enc.encode_comm_event_counter(0, state.diagnostics.event_count & 0xFFFF)


def _comm_event_log(
    state: ServerState, req: GetCommEventLogRequest, device: object, _: RequestContext
) -> Response:
    diag = state.diagnostics
    return enc.encode_comm_event_log(
        0, diag.event_count & 0xFFFF, diag.bus_message_count & 0xFFFF, diag.events()
    )


def _diagnostics(
    state: ServerState, req: DiagnosticRequest, device: object, ctx: RequestContext
) -> Response | None:
    diag = state.diagnostics
    sub = req.sub_function
    echo = enc.encode_diagnostic(sub, req.data)
    if sub == DiagnosticSubFunction.RETURN_QUERY_DATA:
        return echo
    if sub == DiagnosticSubFunction.RESTART_COMMUNICATIONS_OPTION:
        return echo  # the service restarts once the reply is accounted for
    if sub == DiagnosticSubFunction.RETURN_DIAGNOSTIC_REGISTER:
        return enc.encode_diagnostic(sub, _U16.pack(diag.diagnostic_register & 0xFFFF))
    if sub == DiagnosticSubFunction.CHANGE_ASCII_INPUT_DELIMITER:
        diag.ascii_delimiter = req.data[0]
        return echo
    if sub == DiagnosticSubFunction.FORCE_LISTEN_ONLY_MODE:
        if not ctx.serial_line and not state.network_listen_only:
            # Listen-only is a state of the whole device: from a network client it would
            # silence the server for every other client. Not supported there.
            return ExceptionResponse(FunctionCode.DIAGNOSTICS, _ILLEGAL_FUNCTION)
        diag.enter_listen_only()
        return None
    if sub == DiagnosticSubFunction.CLEAR_COUNTERS_AND_DIAGNOSTIC_REGISTER:
        diag.clear_counters()
        return echo
    if sub == DiagnosticSubFunction.CLEAR_OVERRUN_COUNTER_AND_FLAG:
        diag.clear_overrun()
        return echo
    counter = {
        DiagnosticSubFunction.RETURN_BUS_MESSAGE_COUNT: diag.bus_message_count,
        DiagnosticSubFunction.RETURN_BUS_COMMUNICATION_ERROR_COUNT: (
            diag.bus_communication_error_count
        ),
        DiagnosticSubFunction.RETURN_BUS_EXCEPTION_ERROR_COUNT: diag.bus_exception_error_count,
        DiagnosticSubFunction.RETURN_SERVER_MESSAGE_COUNT: diag.server_message_count,
        DiagnosticSubFunction.RETURN_SERVER_NO_RESPONSE_COUNT: diag.server_no_response_count,
        DiagnosticSubFunction.RETURN_SERVER_NAK_COUNT: diag.server_nak_count,
        DiagnosticSubFunction.RETURN_SERVER_BUSY_COUNT: diag.server_busy_count,
        DiagnosticSubFunction.RETURN_BUS_CHARACTER_OVERRUN_COUNT: (
            diag.bus_character_overrun_count
        ),
    }[DiagnosticSubFunction(sub)]
    return enc.encode_diagnostic(sub, _U16.pack(counter & 0xFFFF))


def _report_server_id(
    state: ServerState, req: ReportServerIdRequest, device: object, _: RequestContext
) -> Response:
    basic = state.identity.objects(1)
    server_id = b"-".join(v for v in basic.values() if v) or DEFAULT_SERVER_ID
    return enc.encode_report_server_id(server_id[: MAX_PDU_SIZE - 3], True)


def _device_identification(
    state: ServerState, req: ReadDeviceIdentificationRequest, device: object, _: RequestContext
) -> Response:
    fc = req.function_code
    identity = state.identity
    if req.read_code == 4:
        value = identity.objects(3).get(req.object_id)
        if value is None:
            return ExceptionResponse(fc, _ILLEGAL_ADDRESS)
        return enc.encode_device_identification(
            4, identity.conformity_level, False, 0, [(req.object_id, value)]
        )
    objects = sorted(identity.objects(req.read_code).items())
    ids = [oid for oid, _ in objects]
    start = ids.index(req.object_id) if req.object_id in ids else 0
    size = 7  # function code, MEI type, read code, conformity, more, next id, count
    chosen: list[tuple[int, bytes]] = []
    more, next_id = False, 0
    for oid, value in objects[start:]:
        if size + 2 + len(value) > MAX_PDU_SIZE:
            more, next_id = True, oid
            break
        size += 2 + len(value)
        chosen.append((oid, value))
    return enc.encode_device_identification(
        req.read_code, identity.conformity_level, more, next_id, chosen
    )


def diagnostic_handlers(state: ServerState) -> dict[type, Handler]:
    """The handler of each request type of this group, bound to ``state``.

    Args:
        state: The service whose diagnostic state, identity and options they use.

    Returns:
        Request type → handler.
    """
    return {
        ReadExceptionStatusRequest: partial(_read_exception_status, state),
        DiagnosticRequest: partial(_diagnostics, state),
        GetCommEventCounterRequest: partial(_comm_event_counter, state),
        GetCommEventLogRequest: partial(_comm_event_log, state),
        ReportServerIdRequest: partial(_report_server_id, state),
        ReadDeviceIdentificationRequest: partial(_device_identification, state),
    }
