from trio_modbus.server import StartTcpServer
from trio_modbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusDeviceContext

# Create data stores for different data types
store = ModbusSequentialDataBlock(0, [0] * 100)

# Create device context with data stores
context = ModbusDeviceContext(
    co=store, # coils
    di=store, # discrete inputs
    hr=store, # holding registers
    ir=store # input registers
)

# Create server context
server_context = ModbusServerContext(device_default=context, single=True)

# Start TCP server (blocking)
StartTcpServer(
    context=server_context,
    address=('127.0.0.1', 5020)
)
