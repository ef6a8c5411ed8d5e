from trio_modbus.server import StartTcpServer
from trio_modbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusDeviceContext

# Create data stores for device 1
device1_store = ModbusSequentialDataBlock(0, [10, 20, 30, 40, 50])
device1_context = ModbusDeviceContext(
    co=device1_store,
    di=device1_store,
    hr=device1_store,
    ir=device1_store
)

# Create data stores for device 2
device2_store = ModbusSequentialDataBlock(0, [100, 200, 300, 400, 500])
device2_context = ModbusDeviceContext(
    co=device2_store,
    di=device2_store,
    hr=device2_store,
    ir=device2_store
)

# Create server context with multiple devices
server_context = ModbusServerContext(single=False)
server_context[1] = device1_context # Device ID 1
server_context[2] = device2_context # Device ID 2

# Start server
StartTcpServer(context=server_context, address=('0.0.0.0', 502))
