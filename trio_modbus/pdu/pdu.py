"""Base values shared by every PDU, and the one function that encodes a response.

Exception responses, undecodable requests, the custom-function base class ``ModbusPDU`` and
``encode_response``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from trio_modbus.pdu.codes import ExceptionCode

__all__ = ["ExceptionResponse", "ModbusPDU", "Undecodable", "encode_response"]


@dataclass(frozen=True, slots=True)
class ExceptionResponse:
    """An exception reply: the request's function code with bit 7 set, then one code byte.

    Attributes:
        function_code: The function code of the request being refused (without the 0x80 bit).
        exception_code: Why it is refused.
    """

    function_code: int
    exception_code: ExceptionCode

    def encode(self) -> bytes:
        """Return the PDU bytes: ``function_code | 0x80``, ``exception_code``."""
        return bytes(((self.function_code | 0x80) & 0xFF, self.exception_code))

    def isError(self) -> bool:
        """Return True: this PDU is an exception response (pymodbus-compatible)."""
        return True


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A request PDU that could not be decoded, and the exception the specification prescribes.

    The codec returns it instead of a request value (unsupported function: 01; bad structure
    or quantity: 03; bad file reference: 02). Services receive it like any request, so that
    counters, listen-only mode and broadcast rules still apply; the plain answer is
    :meth:`response`.

    Attributes:
        function_code: The request's function code (0 for an empty PDU).
        exception_code: Why it cannot be decoded.
        pdu: The request PDU as received.
    """

    function_code: int
    exception_code: ExceptionCode
    pdu: bytes = b""

    def response(self) -> ExceptionResponse:
        """The exception response that answers it."""
        return ExceptionResponse(self.function_code, self.exception_code)

    def isError(self) -> bool:
        """Return True: it stands for an error (as pymodbus's decode failures do)."""
        return True


class ModbusPDU:
    """Base class for user-defined function codes (the pymodbus custom-function contract).

    A subclass sets ``function_code``, implements ``encode()`` and ``decode(data)`` and one of
    the execute steps below, and is passed to a server as ``custom_functions=[MyRequest]``.
    The server instantiates the class with no arguments for every request carrying that
    function code, calls ``decode`` with the bytes after the function code (an exception from
    ``decode`` is answered with exception 03 ILLEGAL DATA VALUE), then runs the first execute
    step the class defines, in this order:

    * ``async datastore_update(context, device_id)``: pymodbus 3.10+; receives the server
      context and the unit id.
    * ``update_datastore(context)``: pymodbus 3.7-3.9; receives the unit's device context.
    * ``execute(context)``: the seed documents' spelling; receives the unit's device context.

    Each may be a plain method or a coroutine function. It returns the response PDU (another
    ``ModbusPDU`` whose ``encode()`` gives the bytes after the function code), an
    ``ExceptionResponse``, or ``None`` for no reply. To refuse the request it may also raise
    :class:`~trio_modbus.ServiceError` with the exception code to answer, e.g.
    ``raise ServiceError(ExceptionCode.ILLEGAL_DATA_ADDRESS)``: that is an answer, not a
    failure, and is not logged. Any other exception escaping it is answered with exception 04
    SERVER DEVICE FAILURE (and logged).

    For RTU framing the class declares its request frame length: ``rtu_frame_size`` (the whole
    ADU, address to CRC) when fixed, or ``rtu_byte_count_pos`` (offset of a byte-count byte in
    the ADU; the frame is ``adu[pos] + pos + 3`` bytes long).
    """

    function_code: ClassVar[int] = -1
    sub_function_code: ClassVar[int] = -1
    rtu_frame_size: ClassVar[int] = 0
    rtu_byte_count_pos: ClassVar[int] = 0

    def __init__(
        self,
        dev_id: int = 0,
        transaction_id: int = 0,
        address: int = 0,
        count: int = 0,
        bits: list[bool] | None = None,
        registers: list[int] | None = None,
        status: int = 1,
        **kwargs: Any,
    ) -> None:
        """Store the common PDU fields; unknown keywords are kept as attributes.

        Args:
            dev_id: Unit id of the request (``slave`` and ``slave_id`` are accepted too).
            transaction_id: MBAP transaction id.
            address: Start address, for PDUs that have one.
            count: Quantity, for PDUs that have one.
            bits: Bit values, for PDUs that carry bits.
            registers: Register values, for PDUs that carry registers.
            status: Status, for PDUs that report one.
            **kwargs: Extra attributes a subclass may want set.
        """
        for alias in ("slave", "slave_id", "device_id"):
            if alias in kwargs:
                dev_id = int(kwargs.pop(alias))
        self.dev_id = dev_id
        self.transaction_id = transaction_id
        self.address = address
        self.count = count
        self.bits: list[bool] = bits if bits is not None else []
        self.registers: list[int] = registers if registers is not None else []
        self.status = status
        for key, value in kwargs.items():
            setattr(self, key, value)

    @property
    def slave_id(self) -> int:
        """The unit id under pymodbus 2.x's name."""
        return self.dev_id

    def encode(self) -> bytes:
        """Return the bytes that follow the function code. Subclasses implement this."""
        raise NotImplementedError(f"{type(self).__name__}.encode() is not implemented")

    def decode(self, data: bytes) -> None:
        """Parse the bytes that follow the function code. Subclasses implement this."""
        raise NotImplementedError(f"{type(self).__name__}.decode() is not implemented")

    def isError(self) -> bool:
        """Return True if this PDU is an exception response."""
        return self.function_code > 0x80

    def doException(self, exception: int) -> ExceptionResponse:
        """Build the exception response for this request's function code."""
        return ExceptionResponse(self.function_code, ExceptionCode(exception))

    @classmethod
    def calculateRtuFrameSize(cls, data: bytes) -> int:
        """Return the RTU frame length declared by the class, or 0 if not known yet.

        Args:
            data: The ADU bytes received so far (address first).

        Raises:
            NotImplementedError: The class declares neither rtu_frame_size nor
                rtu_byte_count_pos.
        """
        if cls.rtu_frame_size:
            return cls.rtu_frame_size
        if cls.rtu_byte_count_pos:
            if len(data) <= cls.rtu_byte_count_pos:
                return 0
            return data[cls.rtu_byte_count_pos] + cls.rtu_byte_count_pos + 3
        raise NotImplementedError(f"{cls.__name__} declares no RTU frame size")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(function_code={self.function_code}, dev_id={self.dev_id})"


def encode_response(response: bytes | ExceptionResponse | ModbusPDU) -> bytes:
    r"""Return the PDU bytes (function code first) of a response, whatever form it takes.

    The one place a response becomes bytes: services and request handlers answer with the PDU
    as ``bytes`` (returned as is), an :class:`ExceptionResponse`, or a :class:`ModbusPDU`
    (its ``function_code`` byte, then what its ``encode()`` returns: the custom-function
    contract puts the data after the function code there).

    Args:
        response: The response to encode.

    Returns:
        The response PDU.

    Raises:
        TypeError: ``response`` is none of the three forms.
        ValueError: A ``ModbusPDU`` whose ``function_code`` is not 1..255.

    Example:
        >>> from trio_modbus.pdu import ExceptionCode
        >>> encode_response(b"\x06\x00\x01\x00\x03")
        b'\x06\x00\x01\x00\x03'
        >>> encode_response(ExceptionResponse(3, ExceptionCode.ILLEGAL_DATA_ADDRESS))
        b'\x83\x02'
    """
    if type(response) is bytes:
        return response
    if isinstance(response, ExceptionResponse):
        return response.encode()
    if isinstance(response, ModbusPDU):
        fc = response.function_code
        if not 1 <= fc <= 0xFF:
            raise ValueError(f"{type(response).__name__}.function_code must be 1..255, not {fc}")
        return bytes((fc,)) + response.encode()
    if isinstance(response, bytes):  # a bytes subclass
        return bytes(response)
    raise TypeError(f"a response is bytes, an ExceptionResponse or a ModbusPDU, not {response!r}")
