from trio_modbus.server import StartTcpServer
from trio_modbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusDeviceContext

# Create data store
store = ModbusSequentialDataBlock(0, [0] * 100)
context = ModbusDeviceContext(co=store, di=store, hr=store, ir=store)
server_context = ModbusServerContext(device_default=context, single=True)

# Start server with various configuration options
StartTcpServer(
    context=server_context,
    address=('0.0.0.0', 502),
    allow_reuse_address=True,
    allow_reuse_port=True,
    defer_start=False,
    backlog=20,
    ignore_missing_slaves=True,
    broadcast_enable=False,
    timeout=1
)
