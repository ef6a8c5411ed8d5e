import asyncio
from trio_modbus.server import StartAsyncTcpServer, ServerAsyncStop
from trio_modbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusDeviceContext

async def run_async_server():
    # Create data store
    store = ModbusSequentialDataBlock(0, list(range(100)))
    context = ModbusDeviceContext(co=store, di=store, hr=store, ir=store)
    server_context = ModbusServerContext(device_default=context, single=True)

    # Start async server
    server = await StartAsyncTcpServer(
        context=server_context,
        address=('127.0.0.1', 5020)
    )

    try:
        # Server runs until interrupted
        await asyncio.Event().wait()
    except KeyboardInterrupt:
        print("Server interrupted, shutting down...")
    finally:
        await ServerAsyncStop()

# Run async server
asyncio.run(run_async_server())
