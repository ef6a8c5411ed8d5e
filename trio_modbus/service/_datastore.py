"""The service step: execute decoded requests against a datastore context.

A *service* is the application's one extension point (see DESIGN.md): an async callable
``service(request, ctx) -> response | None``. :class:`DatastoreService` is the standard one: it
routes by unit id, runs the datastore operations of every public function code, keeps the
server's diagnostic counters and event log, answers device identification, and runs
user-defined functions.

Responses are PDU ``bytes`` (function code first) for normal replies and
:class:`~trio_modbus.pdu.ExceptionResponse` for exception replies; ``None`` means no reply
(listen-only mode, broadcast, ignored missing unit, or a custom function that chose silence).
"""

from __future__ import annotations

import inspect
import logging
import struct
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from trio_modbus.datastore import DiagnosticState, ModbusDeviceIdentification
from trio_modbus.pdu import responses as enc
from trio_modbus.pdu.codec import MAX_PDU_SIZE, DecodeResult, decode_request
from trio_modbus.pdu.codes import DiagnosticSubFunction, ExceptionCode, FunctionCode
from trio_modbus.pdu.pdu import ExceptionResponse, ModbusPDU, Undecodable, encode_response
from trio_modbus.pdu.requests import (
    CustomRequest,
    DiagnosticRequest,
    GetCommEventCounterRequest,
    GetCommEventLogRequest,
    MaskWriteRegisterRequest,
    ReadBitsRequest,
    ReadDeviceIdentificationRequest,
    ReadExceptionStatusRequest,
    ReadFifoQueueRequest,
    ReadFileRecordRequest,
    ReadRegistersRequest,
    ReadWriteMultipleRegistersRequest,
    ReportServerIdRequest,
    Request,
    WriteFileRecordRequest,
    WriteMultipleCoilsRequest,
    WriteMultipleRegistersRequest,
    WriteSingleCoilRequest,
    WriteSingleRegisterRequest,
)

log = logging.getLogger("trio_modbus.server")

MAX_FIFO_COUNT = 31  # 0x18: a queue longer than this is answered with 03
DEFAULT_SERVER_ID = b"trio_modbus"  # 0x11 server id when the identity has no basic objects

Response = bytes | ExceptionResponse
"""A reply PDU: bytes for a normal response, an ExceptionResponse for an exception."""

# Function codes a broadcast may carry: writes only (Serial Line spec 2.1).
BROADCAST_FUNCTIONS = frozenset(
    {
        FunctionCode.WRITE_SINGLE_COIL,
        FunctionCode.WRITE_SINGLE_REGISTER,
        FunctionCode.WRITE_MULTIPLE_COILS,
        FunctionCode.WRITE_MULTIPLE_REGISTERS,
        FunctionCode.WRITE_FILE_RECORD,
        FunctionCode.MASK_WRITE_REGISTER,
    }
)

_ILLEGAL_FUNCTION = ExceptionCode.ILLEGAL_FUNCTION
_ILLEGAL_ADDRESS = ExceptionCode.ILLEGAL_DATA_ADDRESS
_ILLEGAL_VALUE = ExceptionCode.ILLEGAL_DATA_VALUE
_DEVICE_FAILURE = ExceptionCode.SERVER_DEVICE_FAILURE
_NO_TARGET = ExceptionCode.GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND
_U16 = struct.Struct(">H")


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Where a request came from.

    Attributes:
        unit_id: The unit id (slave address) of the frame.
        broadcast: True for a serial-line broadcast (unit 0 with broadcast enabled): execute,
            never reply.
        peer: The client's address, when the transport has one.
        role: The client certificate's Modbus role (Modbus/TCP Security), if any.
        serial_line: True when the request came over a serial line, a bus shared with other
            stations: a unit the server does not hold belongs to one of them and is never
            answered, and force listen-only (08/04) applies as the specification says.
    """

    unit_id: int
    broadcast: bool = False
    peer: object = None
    role: str | None = None
    serial_line: bool = False


class Service(Protocol):
    """The application's extension point: answer one request."""

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        """Return the reply PDU for ``request``, or None for no reply."""


class _DeviceContext(Protocol):
    """What the service needs of a device context (``ModbusBaseDeviceContext``)."""

    def validate(self, fx: int, address: int, count: int = 1) -> bool: ...
    def getValues(self, fx: int, address: int, count: int = 1) -> Any: ...
    def setValues(self, fx: int, address: int, values: Any) -> Any: ...


class _ServerContext(Protocol):
    """What the service needs of a server context (``ModbusServerContext``)."""

    def __getitem__(self, unit_id: int) -> Any: ...
    def __contains__(self, unit_id: object) -> bool: ...


def _exception(fc: int, code: int) -> ExceptionResponse:
    return ExceptionResponse(fc, ExceptionCode(code))


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
    ) -> None:
        self.context = context
        self.network_listen_only = network_listen_only
        self.diagnostics = diagnostics if diagnostics is not None else DiagnosticState()
        self.identity = identity if identity is not None else ModbusDeviceIdentification()
        self.ignore_missing_devices = ignore_missing_devices
        self.custom_functions: dict[int, type[ModbusPDU]] = {}
        for cls in custom_functions:
            self.register(cls)
        self._handlers: dict[type, Callable[[Any, Any, RequestContext], Any]] = {
            ReadBitsRequest: self._read_bits,
            ReadRegistersRequest: self._read_registers,
            WriteSingleCoilRequest: self._write_single_coil,
            WriteSingleRegisterRequest: self._write_single_register,
            ReadExceptionStatusRequest: self._read_exception_status,
            DiagnosticRequest: self._diagnostics,
            GetCommEventCounterRequest: self._comm_event_counter,
            GetCommEventLogRequest: self._comm_event_log,
            WriteMultipleCoilsRequest: self._write_multiple_coils,
            WriteMultipleRegistersRequest: self._write_multiple_registers,
            ReportServerIdRequest: self._report_server_id,
            ReadFileRecordRequest: self._read_file_record,
            WriteFileRecordRequest: self._write_file_record,
            MaskWriteRegisterRequest: self._mask_write_register,
            ReadWriteMultipleRegistersRequest: self._read_write_registers,
            ReadFifoQueueRequest: self._read_fifo_queue,
            ReadDeviceIdentificationRequest: self._device_identification,
        }

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
        if not ctx.broadcast and ctx.unit_id not in self.context:
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
            return self._handlers[type(request)](request, device, ctx)  # type: ignore[no-any-return]
        except Exception:
            log.exception("unit %s: function 0x%02X failed", ctx.unit_id, request.function_code)
            return ExceptionResponse(request.function_code, _DEVICE_FAILURE)

    async def _execute_custom(
        self, request: CustomRequest, ctx: RequestContext
    ) -> Response | None:
        try:
            return await self._custom(request, self.context[ctx.unit_id], ctx)
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
            except Exception:
                log.exception("broadcast of function 0x%02X failed", request.function_code)

    # -- bit and register access -------------------------------------------------------------

    @staticmethod
    def _read_values(device: _DeviceContext, fc: int, address: int, count: int) -> Any:
        """Validate and read; an ExceptionResponse when refused."""
        if not device.validate(fc, address, count):
            return ExceptionResponse(fc, _ILLEGAL_ADDRESS)
        values = device.getValues(fc, address, count)
        if isinstance(values, int):
            return _exception(fc, values)
        if len(values) != count:
            raise ValueError(f"datastore returned {len(values)} values for {count}")
        return values

    @staticmethod
    def _write_values(
        device: _DeviceContext, fc: int, address: int, values: Sequence[Any], reply_fc: int = 0
    ) -> ExceptionResponse | None:
        """Validate and write; an ExceptionResponse when refused."""
        reply_fc = reply_fc or fc
        if not device.validate(fc, address, len(values)):
            return ExceptionResponse(reply_fc, _ILLEGAL_ADDRESS)
        result = device.setValues(fc, address, list(values))
        if isinstance(result, int):
            return _exception(reply_fc, result)
        return None

    def _read_bits(self, req: ReadBitsRequest, device: _DeviceContext, _: RequestContext) -> Any:
        values = self._read_values(device, req.function_code, req.address, req.count)
        if type(values) is ExceptionResponse:
            return values
        return enc.encode_read_bits(req.function_code, values)

    def _read_registers(
        self, req: ReadRegistersRequest, device: _DeviceContext, _: RequestContext
    ) -> Any:
        values = self._read_values(device, req.function_code, req.address, req.count)
        if type(values) is ExceptionResponse:
            return values
        return enc.encode_read_registers(req.function_code, values)

    def _write_single_coil(
        self, req: WriteSingleCoilRequest, device: _DeviceContext, _: RequestContext
    ) -> Response:
        refused = self._write_values(device, req.function_code, req.address, [req.value])
        return refused or req.encode()

    def _write_single_register(
        self, req: WriteSingleRegisterRequest, device: _DeviceContext, _: RequestContext
    ) -> Response:
        refused = self._write_values(device, req.function_code, req.address, [req.value])
        return refused or req.encode()

    def _write_multiple_coils(
        self, req: WriteMultipleCoilsRequest, device: _DeviceContext, _: RequestContext
    ) -> Response:
        refused = self._write_values(device, req.function_code, req.address, req.values)
        return refused or enc.encode_write_multiple(
            req.function_code, req.address, len(req.values)
        )

    def _write_multiple_registers(
        self, req: WriteMultipleRegistersRequest, device: _DeviceContext, _: RequestContext
    ) -> Response:
        refused = self._write_values(device, req.function_code, req.address, req.values)
        return refused or enc.encode_write_multiple(
            req.function_code, req.address, len(req.values)
        )

    def _mask_write_register(
        self, req: MaskWriteRegisterRequest, device: _DeviceContext, _: RequestContext
    ) -> Response:
        fc = req.function_code
        current = self._read_values(device, fc, req.address, 1)
        if type(current) is ExceptionResponse:
            return current
        value = (current[0] & req.and_mask) | (req.or_mask & ~req.and_mask & 0xFFFF)
        refused = self._write_values(device, fc, req.address, [value])
        return refused or req.encode()

    def _read_write_registers(
        self, req: ReadWriteMultipleRegistersRequest, device: _DeviceContext, _: RequestContext
    ) -> Response:
        fc = req.function_code
        # Both ranges are checked before anything is written; the write happens first.
        read_fc = FunctionCode.READ_HOLDING_REGISTERS
        write_fc = FunctionCode.WRITE_MULTIPLE_REGISTERS
        if not device.validate(read_fc, req.read_address, req.read_count):
            return ExceptionResponse(fc, _ILLEGAL_ADDRESS)
        refused = self._write_values(
            device, write_fc, req.write_address, req.write_values, reply_fc=fc
        )
        if refused is not None:
            return refused
        values = device.getValues(read_fc, req.read_address, req.read_count)
        if isinstance(values, int):
            return _exception(fc, values)
        return enc.encode_read_registers(fc, values)

    # -- serial-line functions -----------------------------------------------------------------

    def _read_exception_status(
        self, req: ReadExceptionStatusRequest, device: object, _: RequestContext
    ) -> Response:
        return enc.encode_exception_status(self.diagnostics.exception_status)

    def _comm_event_counter(
        self, req: GetCommEventCounterRequest, device: object, _: RequestContext
    ) -> Response:
        return enc.encode_comm_event_counter(0, self.diagnostics.event_count & 0xFFFF)

    def _comm_event_log(
        self, req: GetCommEventLogRequest, device: object, _: RequestContext
    ) -> Response:
        diag = self.diagnostics
        return enc.encode_comm_event_log(
            0, diag.event_count & 0xFFFF, diag.bus_message_count & 0xFFFF, diag.events()
        )

    def _diagnostics(
        self, req: DiagnosticRequest, device: object, ctx: RequestContext
    ) -> Response | None:
        diag = self.diagnostics
        sub = req.sub_function
        echo = enc.encode_diagnostic(sub, req.data)
        if sub == DiagnosticSubFunction.RETURN_QUERY_DATA:
            return echo
        if sub == DiagnosticSubFunction.RESTART_COMMUNICATIONS_OPTION:
            return echo  # __call__ restarts once the reply is accounted for
        if sub == DiagnosticSubFunction.RETURN_DIAGNOSTIC_REGISTER:
            return enc.encode_diagnostic(sub, _U16.pack(diag.diagnostic_register & 0xFFFF))
        if sub == DiagnosticSubFunction.CHANGE_ASCII_INPUT_DELIMITER:
            diag.ascii_delimiter = req.data[0]
            return echo
        if sub == DiagnosticSubFunction.FORCE_LISTEN_ONLY_MODE:
            if not ctx.serial_line and not self.network_listen_only:
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
        self, req: ReportServerIdRequest, device: object, _: RequestContext
    ) -> Response:
        basic = self.identity.objects(1)
        server_id = b"-".join(v for v in basic.values() if v) or DEFAULT_SERVER_ID
        return enc.encode_report_server_id(server_id[: MAX_PDU_SIZE - 3], True)

    # -- files, FIFO, identification --------------------------------------------------------

    def _read_file_record(
        self, req: ReadFileRecordRequest, device: Any, _: RequestContext
    ) -> Response:
        fc = req.function_code
        reader = getattr(device, "read_file_record", None)
        if reader is None:
            return ExceptionResponse(fc, _ILLEGAL_FUNCTION)
        results = []
        for record in req.records:
            values = reader(record.file_number, record.record_number, record.record_length)
            if isinstance(values, int):
                return _exception(fc, values)
            results.append(values)
        return enc.encode_read_file_record(results)

    def _write_file_record(
        self, req: WriteFileRecordRequest, device: Any, _: RequestContext
    ) -> Response:
        fc = req.function_code
        reader = getattr(device, "read_file_record", None)
        writer = getattr(device, "write_file_record", None)
        if reader is None or writer is None:
            return ExceptionResponse(fc, _ILLEGAL_FUNCTION)
        # Check every range before writing any, so a refused request changes nothing.
        for record in req.records:
            existing = reader(record.file_number, record.record_number, record.record_length)
            if isinstance(existing, int):
                return _exception(fc, existing)
        for record in req.records:
            result = writer(record.file_number, record.record_number, list(record.values))
            if isinstance(result, int):
                return _exception(fc, result)
        return req.encode()

    def _read_fifo_queue(
        self, req: ReadFifoQueueRequest, device: Any, _: RequestContext
    ) -> Response:
        fc = req.function_code
        reader = getattr(device, "read_fifo_queue", None)
        if reader is None:
            return ExceptionResponse(fc, _ILLEGAL_FUNCTION)
        values = reader(req.address)
        if isinstance(values, int):
            return _exception(fc, values)
        if len(values) > MAX_FIFO_COUNT:
            return ExceptionResponse(fc, _ILLEGAL_VALUE)
        return enc.encode_fifo_queue(values)

    def _device_identification(
        self, req: ReadDeviceIdentificationRequest, device: object, _: RequestContext
    ) -> Response:
        fc = req.function_code
        if req.read_code == 4:
            value = self.identity.objects(3).get(req.object_id)
            if value is None:
                return ExceptionResponse(fc, _ILLEGAL_ADDRESS)
            return enc.encode_device_identification(
                4, self.identity.conformity_level, False, 0, [(req.object_id, value)]
            )
        objects = sorted(self.identity.objects(req.read_code).items())
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
            req.read_code, self.identity.conformity_level, more, next_id, chosen
        )

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
