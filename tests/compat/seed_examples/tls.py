import ssl
from trio_modbus.server import StartTlsServer
from trio_modbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusDeviceContext

# Create SSL context
ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ssl_context.load_cert_chain(certfile="server.crt", keyfile="server.key")

# Create data store
store = ModbusSequentialDataBlock(0, [0] * 100)
context = ModbusDeviceContext(co=store, di=store, hr=store, ir=store)
server_context = ModbusServerContext(device_default=context, single=True)

# Start TLS server
StartTlsServer(
    context=server_context,
    sslctx=ssl_context,
    address=('127.0.0.1', 802)
)
