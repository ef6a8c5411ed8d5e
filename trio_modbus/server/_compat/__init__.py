"""pymodbus's server API (the seed documents) as adapters over the native servers.

``ModbusTcpServer`` and friends take pymodbus's constructor parameters, build a native
server (:class:`~trio_modbus.server.TcpServer`, …) each time ``serve_forever`` runs, and add
what pymodbus scripts rely on: request handler classes, ``Start*`` / ``StartAsync*`` and
``ServerStop`` / ``ServerAsyncStop``.

Where this differs from pymodbus on purpose:

* ``serve_forever`` is a Trio coroutine (it also runs under asyncio, as a Trio guest on the
  asyncio loop); cancelling it stops the server and closes every socket.
* ``ServerStop()`` / ``ServerAsyncStop()`` stop *every* server started through this module
  that is running in the process (pymodbus stops only the last one created), and doing so
  when none is running is not an error.
* The default address is ``127.0.0.1`` (pymodbus binds every interface).
* On a serial line a unit id the server does not hold is never answered, whatever
  ``ignore_missing_slaves`` says: that station's own reply would collide with ours.
* Force listen-only (08/04) from a TCP, TLS or UDP client is answered with exception 01
  (``network_listen_only=True`` honours it server-wide); pymodbus answers it and never
  enforces the mode.
* Requests a few bytes past the 253-byte PDU limit get exception 03 on every transport.
* A request handler's ``handle()`` is never called: the server runs each client's loop, and
  ``setup``/``finish`` run around it. Overriding ``execute`` or ``send`` sees every request;
  ``send`` gives the one response of the request being executed.
"""

from ._base import ModbusBaseServer as ModbusBaseServer
from ._handlers import (
    ModbusBaseRequestHandler as ModbusBaseRequestHandler,
)
from ._handlers import (
    ModbusConnectedRequestHandler as ModbusConnectedRequestHandler,
)
from ._handlers import (
    ModbusDisconnectedRequestHandler as ModbusDisconnectedRequestHandler,
)
from ._handlers import (
    ModbusSingleRequestHandler as ModbusSingleRequestHandler,
)
from ._network import ModbusTcpServer as ModbusTcpServer
from ._network import ModbusTlsServer as ModbusTlsServer
from ._network import ModbusUdpServer as ModbusUdpServer
from ._registry import ServerAsyncStop as ServerAsyncStop
from ._registry import ServerStop as ServerStop
from ._registry import running_servers as running_servers
from ._registry import wait_for_servers as wait_for_servers
from ._serial import ModbusSerialServer as ModbusSerialServer
from ._start import StartAsyncSerialServer as StartAsyncSerialServer
from ._start import StartAsyncTcpServer as StartAsyncTcpServer
from ._start import StartAsyncTlsServer as StartAsyncTlsServer
from ._start import StartAsyncUdpServer as StartAsyncUdpServer
from ._start import StartSerialServer as StartSerialServer
from ._start import StartTcpServer as StartTcpServer
from ._start import StartTlsServer as StartTlsServer
from ._start import StartUdpServer as StartUdpServer

__all__ = [
    "ModbusBaseRequestHandler",
    "ModbusBaseServer",
    "ModbusConnectedRequestHandler",
    "ModbusDisconnectedRequestHandler",
    "ModbusSerialServer",
    "ModbusSingleRequestHandler",
    "ModbusTcpServer",
    "ModbusTlsServer",
    "ModbusUdpServer",
    "ServerAsyncStop",
    "ServerStop",
    "StartAsyncSerialServer",
    "StartAsyncTcpServer",
    "StartAsyncTlsServer",
    "StartAsyncUdpServer",
    "StartSerialServer",
    "StartTcpServer",
    "StartTlsServer",
    "StartUdpServer",
    "running_servers",
    "wait_for_servers",
]
