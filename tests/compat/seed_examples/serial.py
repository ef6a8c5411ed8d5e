from trio_modbus.server import StartSerialServer
from trio_modbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusDeviceContext
from trio_modbus import FramerType

# Create data store
store = ModbusSequentialDataBlock(0, [0] * 100)
context = ModbusDeviceContext(co=store, di=store, hr=store, ir=store)
server_context = ModbusServerContext(device_default=context, single=True)

# Start serial server
StartSerialServer(
    context=server_context,
    port='/dev/ttyUSB0', # Linux
    # port='COM1', # Windows
    framer=FramerType.RTU,
    baudrate=9600,
    bytesize=8,
    parity='N',
    stopbits=1,
    timeout=1
)
