"""trio_modbus: a Modbus server framework for Trio.

Trio-native servers (``serve_tcp``, ``serve_tls``, ``serve_udp``, ``serve_serial``) over one
engine, spec-exact request handling, and pymodbus's server API under the same names.
"""

import typing

from trio_modbus._errors import ConfigurationError as ConfigurationError
from trio_modbus._errors import ModbusError as ModbusError
from trio_modbus._errors import ModbusProtocolError as ModbusProtocolError
from trio_modbus._errors import ServiceError as ServiceError
from trio_modbus._framer_type import FramerType as FramerType
from trio_modbus._public import lazy_exports, publish

if typing.TYPE_CHECKING:
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
        serve_mbaps,
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
    "serve_mbaps",
    "serve_serial",
    "serve_tcp",
    "serve_tls",
    "serve_udp",
]

# The servers, services and datastores are imported when first used, so that importing the
# package (as the pytest plugin does in every pytest session) does not import Trio.
_LAZY = {
    **dict.fromkeys(
        [
            "DiagnosticState",
            "ModbusDeviceContext",
            "ModbusDeviceIdentification",
            "ModbusSequentialDataBlock",
            "ModbusServerContext",
            "ModbusSparseDataBlock",
        ],
        "trio_modbus.datastore",
    ),
    **dict.fromkeys(
        [
            "BaseServer",
            "SerialServer",
            "ServerStatistics",
            "TcpServer",
            "TlsServer",
            "UdpServer",
            "serve_mbaps",
            "serve_serial",
            "serve_tcp",
            "serve_tls",
            "serve_udp",
        ],
        "trio_modbus.server",
    ),
    **dict.fromkeys(["DatastoreService", "RequestContext", "Service"], "trio_modbus.service"),
}

publish(__name__, globals(), [name for name in __all__ if name not in _LAZY])
__getattr__ = lazy_exports(__name__, globals(), _LAZY)
