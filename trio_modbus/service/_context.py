"""What every service shares: where a request came from, what a reply is, the protocol."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from trio_modbus.pdu.codec import DecodeResult
from trio_modbus.pdu.pdu import ExceptionResponse

Response = bytes | ExceptionResponse
"""A reply PDU: bytes for a normal response, an ExceptionResponse for an exception."""

Handler = Callable[[Any, Any, "RequestContext"], "Response | None"]
"""A function group's handler: (request, device context, request context) → reply or None."""


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Where a request came from.

    Attributes:
        unit_id: The unit id (slave address) of the frame.
        broadcast: True for a serial-line broadcast (unit 0 with broadcast enabled): execute,
            never reply.
        peer: The client's address, when the transport has one.
        role: The client certificate's Modbus role (Modbus/TCP Security), exactly as
            written; None without one (no certificate, or the NULL role).
        certificate: The client's leaf certificate as DER bytes (Modbus/TCP Security), when
            the server checked one; ``cryptography.x509.load_der_x509_certificate`` reads it.
        serial_line: True when the request came over a serial line, a bus shared with other
            stations: a unit the server does not hold belongs to one of them and is never
            answered, and force listen-only (08/04) applies as the specification says.
    """

    unit_id: int
    broadcast: bool = False
    peer: object = None
    role: str | None = None
    serial_line: bool = False
    certificate: bytes | None = None


class Service(Protocol):
    """The application's extension point: answer one request.

    The server calls the service for every frame addressed to it: with the decoded request,
    or with an :class:`~trio_modbus.pdu.pdu.Undecodable` when the PDU could not be decoded (so
    that counters, listen-only mode and broadcast rules stay right; its ``response()`` is the
    plain answer). The service returns the reply (:data:`Response`), or None for no reply. To
    answer with a Modbus exception it returns an :class:`~trio_modbus.pdu.pdu.ExceptionResponse`
    or raises :class:`~trio_modbus.ServiceError`; any other exception is a failure, answered
    with 04 SERVER DEVICE FAILURE and logged. Cross-cutting behaviour is a layer, a service
    wrapping another (:class:`~trio_modbus.service.ServiceLayer`).
    """

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        """Return the reply PDU for ``request``, or None for no reply."""
