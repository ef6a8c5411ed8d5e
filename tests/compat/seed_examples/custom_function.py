from trio_modbus.server import StartTcpServer
from trio_modbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusDeviceContext
from trio_modbus.pdu import ModbusPDU
from trio_modbus import ModbusDeviceIdentification

# Define custom function
class CustomFunction(ModbusPDU):
    function_code = 0x40 # Custom function code

    def __init__(self, **kwargs):
        ModbusPDU.__init__(self, **kwargs)

    def encode(self):
        return b''

    def decode(self, data):
        pass

    def execute(self, context):
        # Custom function logic
        return CustomFunctionResponse()

class CustomFunctionResponse(ModbusPDU):
    function_code = 0x40

    def __init__(self, **kwargs):
        ModbusPDU.__init__(self, **kwargs)

    def encode(self):
        return b'Custom response'

# Create server context
store = ModbusSequentialDataBlock(0, [0] * 100)
context = ModbusDeviceContext(co=store, di=store, hr=store, ir=store)
server_context = ModbusServerContext(device_default=context, single=True)

# Start server with custom function
StartTcpServer(
    context=server_context,
    custom_functions=[CustomFunction],
    address=('127.0.0.1', 502)
)
