r"""Layers: a service that wraps a service.

Cross-cutting behaviour (authorization, fault injection, recording, a gateway, the compat
request handlers) is written once as a *layer*: a service holding an ``inner`` service, which
it calls for whatever it does not handle itself. Layers compose by wrapping, the outermost
sees each request first, and the server knows nothing about any of them: it calls the
outermost like any other service.

A layer subclasses :class:`ServiceLayer` and overrides ``__call__``. It receives every frame
addressed to the server, an :class:`~trio_modbus.pdu.pdu.Undecodable` included (pass those on,
so that the datastore service keeps its counters right). It answers with a Modbus exception
by returning an :class:`~trio_modbus.pdu.pdu.ExceptionResponse` or by raising
:class:`~trio_modbus.ServiceError` (the server answers the request with its code, as if it
had been returned; a broadcast is never answered). Through any stack of layers,
``custom_functions`` and ``diagnostics`` are the innermost service's, so the server finds the
custom-function registry and the diagnostic state of the service it wraps.

A layer that only observes what the server does, and never needs to see a request, sets
``sees_requests = False``: :func:`innermost` then looks through it, and the server may keep
its fast lane (requests answered straight from the datastore, without calling the layer).

Example: a unit whose data may be read but not written. Writes to it are refused with
exception 01 ILLEGAL FUNCTION; everything else goes to the datastore service.

    >>> import trio
    >>> from trio_modbus import ServiceError
    >>> from trio_modbus.datastore import (
    ...     ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext)
    >>> from trio_modbus.pdu import WRITE_FUNCTIONS, ExceptionCode, Undecodable, decode_request
    >>> from trio_modbus.service import DatastoreService, RequestContext, ServiceLayer
    >>> class ReadOnlyUnit(ServiceLayer):
    ...     def __init__(self, inner, unit_id):
    ...         super().__init__(inner)
    ...         self.unit_id = unit_id
    ...
    ...     async def __call__(self, request, ctx):
    ...         if (ctx.unit_id == self.unit_id and not isinstance(request, Undecodable)
    ...                 and request.function_code in WRITE_FUNCTIONS):
    ...             raise ServiceError(ExceptionCode.ILLEGAL_FUNCTION, "unit is read-only")
    ...         return await self.inner(request, ctx)
    >>> device = ModbusDeviceContext(hr=ModbusSequentialDataBlock(0, [0x0102] * 10))
    >>> context = ModbusServerContext(devices={1: device}, single=False)
    >>> service = ReadOnlyUnit(DatastoreService(context), unit_id=1)
    >>> async def ask(service, pdu_hex):
    ...     request = decode_request(bytes.fromhex(pdu_hex))
    ...     try:
    ...         return await service(request, RequestContext(unit_id=1))
    ...     except ServiceError as error:
    ...         return error.code.name
    >>> trio.run(ask, service, "03 00 00 00 01")  # read holding register 0
    b'\x03\x02\x01\x02'
    >>> trio.run(ask, service, "06 00 00 00 07")  # write it
    'ILLEGAL_FUNCTION'
    >>> service.diagnostics is service.inner.diagnostics  # found through the layer
    True

Layers stack: a :class:`RecordingService` over it records each exchange, refusals included.

    >>> from trio_modbus.service import RecordingService
    >>> recorder = RecordingService(service, maxlen=1000)
    >>> trio.run(ask, recorder, "06 00 00 00 07")
    'ILLEGAL_FUNCTION'
    >>> [(type(x.request).__name__, x.response, type(x.error).__name__) for x in recorder.records]
    [('WriteSingleRegisterRequest', None, 'ServiceError')]
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar

from trio_modbus._errors import ConfigurationError
from trio_modbus.datastore import DiagnosticState
from trio_modbus.pdu.codec import DecodeResult
from trio_modbus.pdu.pdu import ModbusPDU

from ._context import RequestContext, Response, Service


class ServiceLayer:
    """Base of a layer: a service that wraps ``inner`` and, by default, delegates to it.

    A subclass overrides ``__call__`` and calls ``await self.inner(request, ctx)`` for what
    it passes on. ``custom_functions`` and ``diagnostics`` are read from ``inner`` (through
    any number of layers); a service without them gives a layer without them.

    Args:
        inner: The service this layer wraps.

    Attributes:
        inner: The wrapped service.
        sees_requests: Class attribute. False declares that the layer never needs to see a
            request (it only observes, e.g. the server's statistics): :func:`innermost`
            looks through it, so the server may answer requests without calling it.
    """

    sees_requests: ClassVar[bool] = True

    def __init__(self, inner: Service) -> None:
        self.inner = inner

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        """Pass the request on to ``inner``; a subclass overrides this.

        Args:
            request: The decoded request, or an ``Undecodable``.
            ctx: The unit id and origin of the request.

        Returns:
            What ``inner`` returns.

        Raises:
            ServiceError: ``inner`` answers with a Modbus exception.
        """
        return await self.inner(request, ctx)

    @property
    def custom_functions(self) -> dict[int, type[ModbusPDU]]:
        """The inner service's custom functions (function code → ``ModbusPDU`` class).

        Raises:
            AttributeError: The inner service has none.
        """
        inner: Any = self.inner
        functions: dict[int, type[ModbusPDU]] = inner.custom_functions
        return functions

    @property
    def diagnostics(self) -> DiagnosticState:
        """The inner service's diagnostic state.

        Raises:
            AttributeError: The inner service has none.
        """
        inner: Any = self.inner
        state: DiagnosticState = inner.diagnostics
        return state

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"


def innermost(service: Service) -> Service:
    """The service under every outer layer that does not need to see requests.

    Unwraps :class:`ServiceLayer` instances whose ``sees_requests`` is False and stops at
    the first service that is not such a layer. The server uses it to decide whether it may
    answer requests without calling the service (its fast lane): only when what this returns
    is a plain ``DatastoreService``.

    Args:
        service: The outermost service.

    Returns:
        ``service`` itself when it sees requests, else the first service under it that does
        (or that is not a layer).
    """
    while isinstance(service, ServiceLayer) and not service.sees_requests:
        service = service.inner
    return service


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request a :class:`RecordingService` passed on, and what came of it.

    Attributes:
        request: The decoded request, or an ``Undecodable``.
        ctx: The unit id and origin of the request.
        response: The reply (None for no reply, or when the service raised).
        error: The exception the service raised (a ``ServiceError`` included), or None.
    """

    request: DecodeResult
    ctx: RequestContext
    response: Response | None
    error: Exception | None = None


class RecordingService(ServiceLayer):
    """A layer that records every exchange with the service it wraps.

    Each call appends an :class:`Exchange`: the request, its context, and the reply or the
    exception raised (which is raised again, unchanged). A call that is cancelled, or
    interrupted by anything that is not an ``Exception``, is not recorded.

    Args:
        inner: The service to record.
        maxlen: Keep only the latest ``maxlen`` exchanges (older ones are dropped), so that a
            long-running server does not grow without bound; None keeps every one.

    Raises:
        ConfigurationError: ``maxlen`` is not a positive int or None.
    """

    def __init__(self, inner: Service, *, maxlen: int | None = None) -> None:
        if maxlen is not None and (type(maxlen) is not int or maxlen < 1):
            raise ConfigurationError(f"maxlen must be a positive int or None, not {maxlen!r}")
        super().__init__(inner)
        self._records: deque[Exchange] = deque(maxlen=maxlen)

    @property
    def maxlen(self) -> int | None:
        """How many exchanges are kept; None keeps them all."""
        return self._records.maxlen

    @property
    def records(self) -> list[Exchange]:
        """The recorded exchanges, oldest first; a copy, as recording goes on meanwhile."""
        return list(self._records)

    def clear(self) -> None:
        """Forget every recorded exchange."""
        self._records.clear()

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        """Pass the request on to ``inner`` and record the exchange.

        Args:
            request: The decoded request, or an ``Undecodable``.
            ctx: The unit id and origin of the request.

        Returns:
            What ``inner`` returns.

        Raises:
            Exception: Whatever ``inner`` raises, recorded first.
        """
        try:
            response = await self.inner(request, ctx)
        except Exception as error:
            self._records.append(Exchange(request, ctx, None, error))
            raise
        self._records.append(Exchange(request, ctx, response))
        return response
