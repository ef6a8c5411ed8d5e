"""Servers: the Trio-native ``serve_*`` functions and pymodbus's server API.

The native API (``serve_tcp``, ``serve_tls``, ``serve_udp``, ``serve_serial`` and their
server classes) is the primary one. The pymodbus-compatible names (``ModbusTcpServer``,
``StartTcpServer``, ``ServerStop``, the request handler classes, …) are adapters over it that
use only what it offers publicly.
"""

import typing

from trio_modbus._public import publish

from ._compat import ModbusBaseRequestHandler as ModbusBaseRequestHandler
from ._compat import ModbusBaseServer as ModbusBaseServer
from ._compat import ModbusConnectedRequestHandler as ModbusConnectedRequestHandler
from ._compat import ModbusDisconnectedRequestHandler as ModbusDisconnectedRequestHandler
from ._compat import ModbusSerialServer as ModbusSerialServer
from ._compat import ModbusSingleRequestHandler as ModbusSingleRequestHandler
from ._compat import ModbusTcpServer as ModbusTcpServer
from ._compat import ModbusTlsServer as ModbusTlsServer
from ._compat import ModbusUdpServer as ModbusUdpServer
from ._compat import ServerAsyncStop as ServerAsyncStop
from ._compat import ServerStop as ServerStop
from ._compat import StartAsyncSerialServer as StartAsyncSerialServer
from ._compat import StartAsyncTcpServer as StartAsyncTcpServer
from ._compat import StartAsyncTlsServer as StartAsyncTlsServer
from ._compat import StartAsyncUdpServer as StartAsyncUdpServer
from ._compat import StartSerialServer as StartSerialServer
from ._compat import StartTcpServer as StartTcpServer
from ._compat import StartTlsServer as StartTlsServer
from ._compat import StartUdpServer as StartUdpServer
from ._compat import running_servers as running_servers
from ._compat import wait_for_servers as wait_for_servers
from ._options import DEFAULT_GRACE as DEFAULT_GRACE
from ._options import DEFAULT_HOST as DEFAULT_HOST
from ._options import DEFAULT_IDLE_TIMEOUT as DEFAULT_IDLE_TIMEOUT
from ._options import Datagram as Datagram
from ._options import DatagramWrapper as DatagramWrapper
from ._options import InvalidRole as InvalidRole
from ._options import MbapsOptions as MbapsOptions
from ._options import SerialOptions as SerialOptions
from ._options import ServerOptions as ServerOptions
from ._options import SessionHook as SessionHook
from ._options import StreamOptions as StreamOptions
from ._options import StreamWrapper as StreamWrapper
from ._options import TcpOptions as TcpOptions
from ._options import TlsOptions as TlsOptions
from ._options import UdpOptions as UdpOptions
from ._pipeline import Session as Session
from ._serial import SerialServer as SerialServer
from ._serial import serve_serial as serve_serial
from ._server import BaseServer as BaseServer
from ._statistics import ServerStatistics as ServerStatistics
from ._tcp import TcpServer as TcpServer
from ._tcp import serve_tcp as serve_tcp
from ._tls import TlsServer as TlsServer
from ._tls import make_server_ssl_context as make_server_ssl_context
from ._tls import serve_mbaps as serve_mbaps
from ._tls import serve_tls as serve_tls
from ._udp import UdpServer as UdpServer
from ._udp import serve_udp as serve_udp

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_HOST",
    "DEFAULT_IDLE_TIMEOUT",
    "BaseServer",
    "Datagram",
    "DatagramWrapper",
    "InvalidRole",
    "MbapsOptions",
    "ModbusBaseRequestHandler",
    "ModbusBaseServer",
    "ModbusConnectedRequestHandler",
    "ModbusDisconnectedRequestHandler",
    "ModbusSerialServer",
    "ModbusSimulatorServer",
    "ModbusSingleRequestHandler",
    "ModbusTcpServer",
    "ModbusTlsServer",
    "ModbusUdpServer",
    "SerialOptions",
    "SerialServer",
    "ServerAsyncStop",
    "ServerOptions",
    "ServerStatistics",
    "ServerStop",
    "Session",
    "SessionHook",
    "StartAsyncSerialServer",
    "StartAsyncTcpServer",
    "StartAsyncTlsServer",
    "StartAsyncUdpServer",
    "StartSerialServer",
    "StartTcpServer",
    "StartTlsServer",
    "StartUdpServer",
    "StreamOptions",
    "StreamWrapper",
    "TcpOptions",
    "TcpServer",
    "TlsOptions",
    "TlsServer",
    "UdpOptions",
    "UdpServer",
    "make_server_ssl_context",
    "running_servers",
    "serve_mbaps",
    "serve_serial",
    "serve_tcp",
    "serve_tls",
    "serve_udp",
    "wait_for_servers",
]

publish(__name__, globals(), [name for name in __all__ if name != "ModbusSimulatorServer"])

if typing.TYPE_CHECKING:
    from trio_modbus.simulator import ModbusSimulatorServer as ModbusSimulatorServer


def __getattr__(name: str) -> object:
    """``ModbusSimulatorServer``, imported on first use (it needs the ``simulator`` extra)."""
    if name == "ModbusSimulatorServer":
        from trio_modbus.simulator import ModbusSimulatorServer

        globals()[name] = ModbusSimulatorServer
        return ModbusSimulatorServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
