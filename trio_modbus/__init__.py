"""trio_modbus: a Modbus server framework for Trio.

Trio-native servers (``serve_tcp``, ``serve_tls``, ``serve_udp``, ``serve_serial``) over one
engine, spec-exact request handling, and pymodbus's server API under the same names.
"""

from trio_modbus._errors import ConfigurationError as ConfigurationError
from trio_modbus._errors import ModbusError as ModbusError
from trio_modbus._errors import ModbusProtocolError as ModbusProtocolError
from trio_modbus._errors import ServiceError as ServiceError
from trio_modbus._framer_type import FramerType as FramerType
from trio_modbus._public import publish
from trio_modbus.datastore import (
    DiagnosticState,
    ModbusDeviceContext,
    ModbusDeviceIdentification,
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSparseDataBlock,
)
from trio_modbus.server import (
    BaseServer,
    SerialServer,
    ServerStatistics,
    TcpServer,
    TlsServer,
    UdpServer,
    serve_serial,
    serve_tcp,
    serve_tls,
    serve_udp,
)
from trio_modbus.service import DatastoreService, RequestContext, Service

__version__ = "0.1.0"

__all__ = [
    "BaseServer",
    "ConfigurationError",
    "DatastoreService",
    "DiagnosticState",
    "FramerType",
    "ModbusDeviceContext",
    "ModbusDeviceIdentification",
    "ModbusError",
    "ModbusProtocolError",
    "ModbusSequentialDataBlock",
    "ModbusServerContext",
    "ModbusSparseDataBlock",
    "RequestContext",
    "SerialServer",
    "ServerStatistics",
    "Service",
    "ServiceError",
    "TcpServer",
    "TlsServer",
    "UdpServer",
    "serve_serial",
    "serve_tcp",
    "serve_tls",
    "serve_udp",
]

publish(__name__, globals(), __all__)
