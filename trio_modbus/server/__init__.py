"""Servers: the Trio-native ``serve_*`` functions and pymodbus's server API.

The native API (``serve_tcp``, ``serve_tls``, ``serve_udp``, ``serve_serial`` and their
server classes) is the primary one. The pymodbus-compatible names (``ModbusTcpServer``,
``StartTcpServer``, ``ServerStop``, the request handler classes, …) are thin adapters over it.
"""

from trio_modbus.server._compat import (
    ModbusBaseRequestHandler,
    ModbusBaseServer,
    ModbusConnectedRequestHandler,
    ModbusDisconnectedRequestHandler,
    ModbusSerialServer,
    ModbusSingleRequestHandler,
    ModbusTcpServer,
    ModbusTlsServer,
    ModbusUdpServer,
    ServerAsyncStop,
    ServerStop,
    StartAsyncSerialServer,
    StartAsyncTcpServer,
    StartAsyncTlsServer,
    StartAsyncUdpServer,
    StartSerialServer,
    StartTcpServer,
    StartTlsServer,
    StartUdpServer,
    running_servers,
    wait_for_servers,
)
from trio_modbus.server._engine import (
    DEFAULT_GRACE,
    DEFAULT_IDLE_TIMEOUT,
    BaseServer,
    ServerStatistics,
)
from trio_modbus.server._serial import SerialServer, serve_serial
from trio_modbus.server._tcp import (
    TcpServer,
    TlsServer,
    make_server_ssl_context,
    serve_tcp,
    serve_tls,
)
from trio_modbus.server._udp import UdpServer, serve_udp

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_IDLE_TIMEOUT",
    "BaseServer",
    "ModbusBaseRequestHandler",
    "ModbusBaseServer",
    "ModbusConnectedRequestHandler",
    "ModbusDisconnectedRequestHandler",
    "ModbusSerialServer",
    "ModbusSingleRequestHandler",
    "ModbusTcpServer",
    "ModbusTlsServer",
    "ModbusUdpServer",
    "SerialServer",
    "ServerAsyncStop",
    "ServerStatistics",
    "ServerStop",
    "StartAsyncSerialServer",
    "StartAsyncTcpServer",
    "StartAsyncTlsServer",
    "StartAsyncUdpServer",
    "StartSerialServer",
    "StartTcpServer",
    "StartTlsServer",
    "StartUdpServer",
    "TcpServer",
    "TlsServer",
    "UdpServer",
    "make_server_ssl_context",
    "running_servers",
    "serve_serial",
    "serve_tcp",
    "serve_tls",
    "serve_udp",
    "wait_for_servers",
]
