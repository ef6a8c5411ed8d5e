"""The standard service: execute decoded requests against a datastore context.

:class:`DatastoreService` routes by unit id, runs the datastore operations of every public
function code (the handlers of ``_data`` and ``_diagnostics``), keeps the server's diagnostic
counters and event log, answers device identification, and runs user-defined functions.

Responses are PDU ``bytes`` (function code first) for normal replies and
:class:`~trio_modbus.pdu.pdu.ExceptionResponse` for exception replies; ``None`` means no reply
(listen-only mode, broadcast, ignored missing unit, or a custom function that chose silence).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

from trio_modbus._errors import ServiceError
from trio_modbus.datastore import DiagnosticState, ModbusDeviceIdentification
from trio_modbus.pdu.codec import DecodeResult, decode_request
from trio_modbus.pdu.codes import (
    WRITE_FUNCTIONS,
    DiagnosticSubFunction,
    ExceptionCode,
    FunctionCode,
)
from trio_modbus.pdu.pdu import ExceptionResponse, ModbusPDU, Undecodable, encode_response
from trio_modbus.pdu.requests import CustomRequest, DiagnosticRequest, Request

from ._context import Handler, RequestContext, Response
from ._data import DATA_HANDLERS
from ._diagnostics import diagnostic_handlers

log = logging.getLogger("trio_modbus.server")

# Function codes a broadcast may carry: writes only (Serial Line spec 2.1).
BROADCAST_FUNCTIONS = WRITE_FUNCTIONS - {FunctionCode.READ_WRITE_MULTIPLE_REGISTERS}

_ILLEGAL_FUNCTION = ExceptionCode.ILLEGAL_FUNCTION
_DEVICE_FAILURE = ExceptionCode.SERVER_DEVICE_FAILURE
_NO_TARGET = ExceptionCode.GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND


class _ServerContext(Protocol):
    """What the service needs of a server context (``ModbusServerContext``)."""

    def __getitem__(self, unit_id: int) -> Any: ...
    def __contains__(self, unit_id: object) -> bool: ...


class DatastoreService:
    """Executes every public function code against a ``ModbusServerContext``.

    Args:
        context: The server context (unit id → device context).
        diagnostics: The server's diagnostic state; a new one if omitted.
        identity: Device identification for 0x2B/0x0E and 0x11; an empty one if omitted.
        ignore_missing_devices: Give no reply (instead of exception 0B) to a unit id the
            context does not hold. On a serial line (``ctx.serial_line``) such a unit is never
            answered, whatever this says: its reply would collide with the other station's.
        custom_functions: ``ModbusPDU`` subclasses for user-defined function codes.
        network_listen_only: Honour force listen-only (08/04) from network clients: the
            whole server then stops answering every client until 08/01, as a serial device
            behind a gateway would. By default a request that did not come over a serial line
            gets exception 01 for 08/04, so that one client cannot silence the server for
            all the others (FC 08 is a serial-line function).
        serves_unit: Whether the service answers for a unit id; by default, whether the
            context holds it (``unit_id in context``). A unit for which it returns False is
            treated exactly as one the context does not hold: exception 0B, or no reply with
            ``ignore_missing_devices``, on a serial line or in listen-only mode. It replaces
            the default test, so a unit it accepts must be one the context can look up
            (a request for any other fails with 04). Not asked for a broadcast.

    A datastore or a custom function's execute step that raises
    :class:`~trio_modbus.ServiceError` is answered with its exception code (an answer, not a
    failure: nothing is logged); any other exception it raises is answered with 04 SERVER
    DEVICE FAILURE and logged. A broadcast is executed on every device and never answered.
    """

    def __init__(
        self,
        context: _ServerContext,
        *,
        diagnostics: DiagnosticState | None = None,
        identity: ModbusDeviceIdentification | None = None,
        ignore_missing_devices: bool = False,
        custom_functions: Iterable[type[ModbusPDU]] = (),
        network_listen_only: bool = False,
        serves_unit: Callable[[int], bool] | None = None,
    ) -> None:
        self.context = context
        self.serves_unit = serves_unit
        self.network_listen_only = network_listen_only
        self.diagnostics = diagnostics if diagnostics is not None else DiagnosticState()
        self.identity = identity if identity is not None else ModbusDeviceIdentification()
        self.ignore_missing_devices = ignore_missing_devices
        self.custom_functions: dict[int, type[ModbusPDU]] = {}
        for cls in custom_functions:
            self.register(cls)
        # Request type → handler, one table for every standard function (a dict lookup, then
        # a plain call: no coroutine per request).
        self._handlers: dict[type, Handler] = {**DATA_HANDLERS, **diagnostic_handlers(self)}

    def register(self, cls: type[ModbusPDU]) -> None:
        """Add a user-defined function (a ``ModbusPDU`` subclass with a function code).

        Raises:
            ValueError: The class has no valid function code (1..127).
        """
        fc = getattr(cls, "function_code", -1)
        if not isinstance(fc, int) or not 1 <= fc <= 0x7F:
            raise ValueError(f"{cls.__name__}.function_code must be 1..127, not {fc!r}")
        self.custom_functions[fc] = cls

    def decode(self, pdu: bytes) -> DecodeResult:
        """Decode a request PDU with this service's custom functions."""
        return decode_request(pdu, self.custom_functions)

    async def process(self, pdu: bytes, ctx: RequestContext) -> bytes | None:
        """Decode, execute and encode one request PDU; None when no reply is due."""
        response = await self(decode_request(pdu, self.custom_functions), ctx)
        return None if response is None else encode_response(response)

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        """Execute a decoded request (or answer a decoding failure) for ``ctx.unit_id``.

        Args:
            request: What ``decode_request`` returned for the PDU.
            ctx: The unit id and origin of the request.

        Returns:
            The reply, or None when none is due.
        """
        diag = self.diagnostics
        serves = self.serves_unit
        if not ctx.broadcast and (
            ctx.unit_id not in self.context if serves is None else not serves(ctx.unit_id)
        ):
            # A unit the server does not hold (the one missing-device rule).
            if self.ignore_missing_devices or ctx.serial_line or diag.listen_only:
                # In listen-only mode the server answers nothing at all (spec 6.8.1, 04).
                return None
            return ExceptionResponse(request.function_code, _NO_TARGET)
        diag.server_message_count += 1
        if diag.listen_only:
            diag.add_receive_event(broadcast=ctx.broadcast)
            if (
                type(request) is DiagnosticRequest
                and request.sub_function == DiagnosticSubFunction.RESTART_COMMUNICATIONS_OPTION
            ):
                # The only request served in listen-only mode; it ends the mode, unanswered.
                diag.restart(clear_log=request.data == b"\xff\x00")
            else:
                diag.server_no_response_count += 1
            return None
        if ctx.broadcast:
            diag.add_receive_event(broadcast=True)
            diag.server_no_response_count += 1
            if (
                not isinstance(request, Undecodable)
                and request.function_code in BROADCAST_FUNCTIONS
            ):
                await self._broadcast(request, ctx)
            diag.add_send_event()
            return None
        diag.add_receive_event()
        if isinstance(request, Undecodable):
            response: Response | None = request.response()
        elif type(request) is CustomRequest:
            response = await self._execute_custom(request, ctx)
        else:
            response = self._execute(request, ctx)
        response = self._account(request, response)
        if (
            type(request) is DiagnosticRequest
            and request.sub_function == DiagnosticSubFunction.RESTART_COMMUNICATIONS_OPTION
            and type(response) is bytes
        ):
            # "A normal response is returned. This occurs before the restart is executed"
            # (spec 6.8.1, 01): the reply is accounted for first, then the counters cleared.
            diag.restart(clear_log=request.data == b"\xff\x00")
        return response

    def _account(self, request: DecodeResult, response: Response | None) -> Response | None:
        diag = self.diagnostics
        if response is None:
            diag.server_no_response_count += 1
            if diag.listen_only:  # 08/04 just switched the mode on: log it, not a send event
                return None
            diag.add_send_event()
            return None
        if type(response) is ExceptionResponse:
            code = response.exception_code
            diag.bus_exception_error_count += 1
            if code == ExceptionCode.SERVER_DEVICE_BUSY:
                diag.server_busy_count += 1
            elif code == ExceptionCode.NEGATIVE_ACKNOWLEDGE:
                diag.server_nak_count += 1
            diag.add_send_event(code)
            return response
        if request.function_code != FunctionCode.GET_COMM_EVENT_COUNTER:
            diag.event_count += 1
        diag.add_send_event()
        return response

    def _execute(self, request: Request, ctx: RequestContext) -> Response | None:
        """Execute a standard request (synchronous: no coroutine per request)."""
        try:
            device = self.context[ctx.unit_id]
            return self._handlers[type(request)](request, device, ctx)
        except ServiceError as error:
            return ExceptionResponse(request.function_code, error.code)
        except Exception:
            log.exception("unit %s: function 0x%02X failed", ctx.unit_id, request.function_code)
            return ExceptionResponse(request.function_code, _DEVICE_FAILURE)

    async def _execute_custom(
        self, request: CustomRequest, ctx: RequestContext
    ) -> Response | None:
        try:
            return await self._custom(request, self.context[ctx.unit_id], ctx)
        except ServiceError as error:
            return ExceptionResponse(request.function_code, error.code)
        except Exception:
            log.exception("unit %s: function 0x%02X failed", ctx.unit_id, request.function_code)
            return ExceptionResponse(request.function_code, _DEVICE_FAILURE)

    async def _broadcast(self, request: Request, ctx: RequestContext) -> None:
        devices: Sequence[Any]
        ids = getattr(self.context, "device_ids", None)
        if getattr(self.context, "single", False) or ids is None:
            devices = [self.context[0]]
        else:
            devices = [self.context[unit] for unit in ids()]
        for device in devices:
            try:
                if type(request) is CustomRequest:
                    await self._custom(request, device, ctx)
                else:
                    self._handlers[type(request)](request, device, ctx)
            except ServiceError:
                pass  # an answer, and a broadcast is never answered
            except Exception:
                log.exception("broadcast of function 0x%02X failed", request.function_code)

    # -- user-defined functions ----------------------------------------------------------------

    async def _custom(
        self, req: CustomRequest, device: Any, ctx: RequestContext
    ) -> Response | None:
        pdu = req.pdu
        pdu.dev_id = ctx.unit_id
        step: Callable[..., Any]
        args: tuple[Any, ...]
        if hasattr(pdu, "datastore_update"):
            step, args = pdu.datastore_update, (self.context, ctx.unit_id)
        elif hasattr(pdu, "update_datastore"):
            step, args = pdu.update_datastore, (device,)
        elif hasattr(pdu, "execute"):
            step, args = pdu.execute, (device,)
        else:
            return ExceptionResponse(req.function_code, _ILLEGAL_FUNCTION)
        result = step(*args)
        if inspect.isawaitable(result):
            result = await _await(result)
        if result is None or isinstance(result, ExceptionResponse | bytes):
            return result
        if isinstance(result, ModbusPDU):
            fc = result.function_code
            if fc < 0:
                fc = req.function_code
            return bytes((fc & 0xFF,)) + result.encode()
        raise TypeError(f"custom function returned {type(result).__name__}, not a ModbusPDU")


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
