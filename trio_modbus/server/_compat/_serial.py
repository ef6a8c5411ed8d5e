"""pymodbus's serial server class over the native one (and RTU over TCP)."""

from __future__ import annotations

import os
from typing import Any

from trio_modbus._framer_type import FramerType
from trio_modbus.datastore import ModbusDeviceIdentification
from trio_modbus.server._options import DEFAULT_REOPEN_DELAY
from trio_modbus.server._serial import SerialServer
from trio_modbus.server._server import BaseServer
from trio_modbus.server._tcp import TcpServer

from ._base import ModbusBaseServer
from ._handlers import ModbusBaseRequestHandler, ModbusSingleRequestHandler
from ._options import SERIAL_OPTIONS, socket_url

__all__ = ["ModbusSerialServer"]


class ModbusSerialServer(ModbusBaseServer):
    """A Modbus server on a serial line (RTU or ASCII) with pymodbus's constructor.

    ``port="socket://host:port"`` serves the framing over a TCP listener instead (pymodbus's
    "RTU over TCP").

    Args:
        context: The ``ModbusServerContext`` served.
        framer: ``FramerType.RTU`` (default) or ``FramerType.ASCII``.
        identity: The device identification.
        port: The serial device, e.g. ``/dev/ttyUSB0``.
        stopbits: 1, 1.5 or 2.
        bytesize: Data bits.
        parity: ``"N"``, ``"E"``, ``"O"``, ``"M"`` or ``"S"``.
        baudrate: Line speed (19200).
        timeout: Accepted for compatibility: frames end by the line's silence (t3.5 for RTU),
            not by a read timeout.
        handle_local_echo: Drop the echo of our own replies.
        ignore_missing_slaves: Kept for compatibility: on a serial line a unit id the server
            does not hold belongs to another station and is never answered, whatever this
            says (pymodbus answers 0B when it is False, colliding with that station's
            reply). RTU over TCP (``socket://``) is one client's connection: there it works
            as on TCP.
        broadcast_enable: Execute writes sent to unit 0 (never answered).
        auto_open: Reopen the port when it vanishes (True); with False a lost port ends
            ``serve_forever``.
        auto_close: Accepted: the port is always closed when the server stops.
        reconnect_delay: Seconds between attempts to reopen the port.
        **kwargs: The options of :class:`ModbusBaseServer`.
    """

    _transport_options = SERIAL_OPTIONS
    _default_framer = FramerType.RTU
    _default_handler = ModbusSingleRequestHandler

    def __init__(
        self,
        context: Any = None,
        framer: Any = None,
        identity: ModbusDeviceIdentification | None = None,
        port: str | None = None,
        stopbits: float = 1,
        bytesize: int = 8,
        parity: str = "N",
        baudrate: int = 19200,
        timeout: float = 1,
        handle_local_echo: bool = False,
        ignore_missing_slaves: bool = False,
        broadcast_enable: bool = False,
        auto_open: bool = True,
        auto_close: bool = False,
        **kwargs: Any,
    ) -> None:
        """Check and store the options (see the class)."""
        reconnect_delay = kwargs.pop("reconnect_delay", DEFAULT_REOPEN_DELAY)
        kwargs.pop("allow_multiple_devices", None)  # our RTU framer always shares the bus
        defer_start = bool(kwargs.pop("defer_start", False))
        super().__init__(
            context,
            framer,
            identity,
            timeout=timeout,
            ignore_missing_slaves=ignore_missing_slaves,
            broadcast_enable=broadcast_enable,
            **kwargs,
        )
        if port is None:
            raise TypeError("ModbusSerialServer needs port= (e.g. '/dev/ttyUSB0')")
        self.port = port
        self.stopbits = stopbits
        self.bytesize = bytesize
        self.parity = parity
        self.baudrate = baudrate
        self.handle_local_echo = handle_local_echo
        self.auto_open = auto_open
        self.auto_close = auto_close
        self.reconnect_delay = reconnect_delay
        self.defer_start = defer_start
        self._socket_address = socket_url(port)
        if self._socket_address is None and self.framer not in (FramerType.RTU, FramerType.ASCII):
            raise ValueError(f"a serial server speaks RTU or ASCII, not {self.framer.value}")

    def _configured_address(self) -> Any:
        return self._socket_address or self.port

    def _build(self) -> BaseServer:
        if self._socket_address is not None:
            host, port = self._socket_address
            return TcpServer(host=host, port=port, framer=self.framer, **self._native_options())
        return SerialServer(
            port=self.port,
            framer=self.framer,
            baudrate=self.baudrate,
            bytesize=self.bytesize,
            parity=self.parity,
            stopbits=self.stopbits,
            handle_local_echo=self.handle_local_echo,
            reopen=self.auto_open,
            reopen_delay=self.reconnect_delay,
            **self._native_options(),
        )

    def _build_handler(self, request: Any = None) -> ModbusBaseRequestHandler:
        """Build the handler of a serial-port session (the seed's helper)."""
        return self.handler(request, self.port, self)

    def _connect(self) -> bool:
        """Whether the serial port can be opened now (True) or not (False)."""
        if self._socket_address is not None:
            return True
        try:
            fd = os.open(self.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            return False
        os.close(fd)
        return True
