"""The exception tree of trio_modbus: every error it raises derives from ModbusError."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trio_modbus.pdu.codes import ExceptionCode

__all__ = [
    "ConfigurationError",
    "ModbusError",
    "ModbusProtocolError",
    "ServiceError",
]


class ModbusError(Exception):
    """Root of every exception raised by trio_modbus."""


class ModbusProtocolError(ModbusError):
    """The byte stream is not Modbus and cannot be resynchronised.

    Raised by the framers (for example an MBAP header with a protocol id other than 0 or a length
    outside 2..254). The connection layer closes the offending connection; other clients are not
    affected.
    """


class ConfigurationError(ModbusError, ValueError):
    """A server, datastore or identity was configured with an invalid value."""


class ServiceError(ModbusError):
    """Raised by a service (or a layer) to answer the request with a Modbus exception.

    The server answers with ``code`` for the request's function code, as if the service had
    returned that :class:`~trio_modbus.pdu.pdu.ExceptionResponse`; nothing is logged (it is an
    answer, not a failure). A broadcast is never answered, whatever is raised.

    Args:
        code: The exception code, e.g. ``ExceptionCode.ILLEGAL_DATA_ADDRESS``.
        message: Optional text for logs and ``str()``.
    """

    def __init__(self, code: ExceptionCode | int, message: str = "") -> None:
        """Store the code (an ``ExceptionCode``) and the message."""
        from trio_modbus.pdu.codes import ExceptionCode

        self.code = ExceptionCode(code)
        super().__init__(message or f"Modbus exception {self.code.name} ({int(self.code):#04x})")
