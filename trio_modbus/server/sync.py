"""pymodbus 2.x's ``pymodbus.server.sync`` module path, for scripts that still import it.

The names are those of :mod:`trio_modbus.server`; nothing here runs a thread per client.
"""

from trio_modbus.server._compat import (
    ModbusBaseRequestHandler,
    ModbusConnectedRequestHandler,
    ModbusDisconnectedRequestHandler,
    ModbusSerialServer,
    ModbusSingleRequestHandler,
    ModbusTcpServer,
    ModbusTlsServer,
    ModbusUdpServer,
    ServerStop,
    StartSerialServer,
    StartTcpServer,
    StartTlsServer,
    StartUdpServer,
)

__all__ = [
    "ModbusBaseRequestHandler",
    "ModbusConnectedRequestHandler",
    "ModbusDisconnectedRequestHandler",
    "ModbusSerialServer",
    "ModbusSingleRequestHandler",
    "ModbusTcpServer",
    "ModbusTlsServer",
    "ModbusUdpServer",
    "ServerStop",
    "StartSerialServer",
    "StartTcpServer",
    "StartTlsServer",
    "StartUdpServer",
]
