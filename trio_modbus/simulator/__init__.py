"""pymodbus's JSON simulator, read unchanged: configuration, the simulated device and actions.

:func:`load_config` reads a pymodbus ``setup.json`` (or the built-in default) into a
:class:`SimulatorConfig`; :meth:`SimulatorConfig.select` picks a server and a device; a
:class:`SimulatorData` holds the device's cells and answers Modbus requests through
:meth:`SimulatorData.context`, as pymodbus's simulator answers them where pymodbus follows
the Modbus specification.
"""

from trio_modbus._public import publish
from trio_modbus.simulator._config import (
    BUILTIN_ACTIONS,
    CELL_TYPES,
    CellType,
    CustomAction,
    DeviceConfig,
    RepeatEntry,
    ServerConfig,
    SimulatorConfig,
    TypeEntry,
    load_config,
    load_custom_actions,
)
from trio_modbus.simulator._datastore import (
    VALUE_TYPES,
    Cell,
    SimulatorData,
    SimulatorDeviceContext,
    build_server_context,
    decode_value,
    encode_value,
)
from trio_modbus.simulator._extensions import GENERATOR_KINDS, GENERATOR_TYPES, GeneratorConfig
from trio_modbus.simulator._server import ModbusSimulatorServer

__all__ = [
    "BUILTIN_ACTIONS",
    "CELL_TYPES",
    "GENERATOR_KINDS",
    "GENERATOR_TYPES",
    "VALUE_TYPES",
    "Cell",
    "CellType",
    "CustomAction",
    "DeviceConfig",
    "GeneratorConfig",
    "ModbusSimulatorServer",
    "RepeatEntry",
    "ServerConfig",
    "SimulatorConfig",
    "SimulatorData",
    "SimulatorDeviceContext",
    "TypeEntry",
    "build_server_context",
    "decode_value",
    "encode_value",
    "load_config",
    "load_custom_actions",
]

publish(__name__, globals(), __all__)
