"""pymodbus's ``Start*`` and ``StartAsync*`` functions over the compat server classes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sniffio
import trio

from trio_modbus.datastore import ModbusDeviceIdentification
from trio_modbus.pdu.pdu import ModbusPDU

from ._base import ModbusBaseServer
from ._network import ModbusTcpServer, ModbusTlsServer, ModbusUdpServer
from ._serial import ModbusSerialServer

__all__ = [
    "StartAsyncSerialServer",
    "StartAsyncTcpServer",
    "StartAsyncTlsServer",
    "StartAsyncUdpServer",
    "StartSerialServer",
    "StartTcpServer",
    "StartTlsServer",
    "StartUdpServer",
]


def _run_blocking(server: ModbusBaseServer, name: str) -> ModbusBaseServer | None:
    """Serve until stopped (None); with ``defer_start=True`` return the server unserved."""
    if getattr(server, "defer_start", False):
        return server
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        library = None
    if library is not None:
        raise RuntimeError(
            f"{name}() blocks and runs its own Trio loop; inside {library} code use "
            f"await {name.replace('Start', 'StartAsync')}(...)"
        )
    trio.run(server.serve_forever)
    return None


async def _start_async(
    server: ModbusBaseServer, task_status: trio.TaskStatus[Any]
) -> ModbusBaseServer:
    if not getattr(server, "defer_start", False):
        await server.serve_forever(task_status=task_status)
    else:
        task_status.started(server)
    return server


def StartTcpServer(
    context: Any = None,
    identity: ModbusDeviceIdentification | None = None,
    address: tuple[str, int] | None = None,
    custom_functions: Iterable[type[ModbusPDU]] | None = None,
    **kwargs: Any,
) -> Any:
    """Start a Modbus/TCP server and serve until it is stopped (blocking; runs Trio itself).

    Stop it with ``ServerStop()`` from another thread or a signal handler, or Ctrl-C.

    Args:
        context: The ``ModbusServerContext`` served.
        identity: The device identification.
        address: ``(host, port)``; default ``("127.0.0.1", 502)``.
        custom_functions: ``ModbusPDU`` subclasses for user-defined function codes.
        **kwargs: The options of :class:`ModbusTcpServer`.

    Returns:
        None once the server has stopped; the server, unserved, with ``defer_start=True``.
    """
    server = ModbusTcpServer(
        context, identity=identity, address=address, custom_functions=custom_functions, **kwargs
    )
    return _run_blocking(server, "StartTcpServer")


def StartTlsServer(
    context: Any = None,
    identity: ModbusDeviceIdentification | None = None,
    address: tuple[str, int] | None = None,
    sslctx: Any = None,
    custom_functions: Iterable[type[ModbusPDU]] | None = None,
    **kwargs: Any,
) -> Any:
    """Start a Modbus/TCP Security server and serve until it is stopped (blocking).

    Args:
        context: The ``ModbusServerContext`` served.
        identity: The device identification.
        address: ``(host, port)``; default ``("127.0.0.1", 802)``.
        sslctx: A server ``ssl.SSLContext`` (or give ``certfile``/``keyfile``).
        custom_functions: User-defined function codes.
        **kwargs: The options of :class:`ModbusTlsServer`.

    Returns:
        None once stopped; the unserved server with ``defer_start=True``.
    """
    server = ModbusTlsServer(
        context,
        identity=identity,
        address=address,
        sslctx=sslctx,
        custom_functions=custom_functions,
        **kwargs,
    )
    return _run_blocking(server, "StartTlsServer")


def StartUdpServer(
    context: Any = None,
    identity: ModbusDeviceIdentification | None = None,
    address: tuple[str, int] | None = None,
    custom_functions: Iterable[type[ModbusPDU]] | None = None,
    **kwargs: Any,
) -> Any:
    """Start a Modbus/UDP server and serve until it is stopped (blocking).

    Args:
        context: The ``ModbusServerContext`` served.
        identity: The device identification.
        address: ``(host, port)``; default ``("127.0.0.1", 502)``.
        custom_functions: User-defined function codes.
        **kwargs: The options of :class:`ModbusUdpServer` (e.g. ``framer``).

    Returns:
        None once stopped; the unserved server with ``defer_start=True``.
    """
    server = ModbusUdpServer(
        context, identity=identity, address=address, custom_functions=custom_functions, **kwargs
    )
    return _run_blocking(server, "StartUdpServer")


def StartSerialServer(
    context: Any = None,
    identity: ModbusDeviceIdentification | None = None,
    port: str | None = None,
    custom_functions: Iterable[type[ModbusPDU]] | None = None,
    **kwargs: Any,
) -> Any:
    """Start a serial Modbus server and serve until it is stopped (blocking).

    Args:
        context: The ``ModbusServerContext`` served.
        identity: The device identification.
        port: The serial device, or ``socket://host:port`` for RTU over TCP.
        custom_functions: User-defined function codes (with their RTU frame sizes).
        **kwargs: The options of :class:`ModbusSerialServer` (framer, baudrate, ...).

    Returns:
        None once stopped; the unserved server with ``defer_start=True``.
    """
    server = ModbusSerialServer(
        context, identity=identity, port=port, custom_functions=custom_functions, **kwargs
    )
    return _run_blocking(server, "StartSerialServer")


async def StartAsyncTcpServer(
    context: Any = None,
    identity: ModbusDeviceIdentification | None = None,
    address: tuple[str, int] | None = None,
    custom_functions: Iterable[type[ModbusPDU]] | None = None,
    *,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    **kwargs: Any,
) -> ModbusTcpServer:
    """Serve Modbus/TCP until stopped or cancelled, then return the server (Trio or asyncio).

    With ``await nursery.start(partial(StartAsyncTcpServer, context, address=...))`` the
    nursery gets the server once it is bound.

    Args:
        context: The ``ModbusServerContext`` served.
        identity: The device identification.
        address: ``(host, port)``; default ``("127.0.0.1", 502)``.
        custom_functions: User-defined function codes.
        task_status: For ``nursery.start``.
        **kwargs: The options of :class:`ModbusTcpServer`.

    Returns:
        The server, once it has stopped (at once, unserved, with ``defer_start=True``).

    Cancellation:
        Cancelling it (its Trio scope, or the asyncio task awaiting it) stops the server: the
        listener or port and every connection are closed before the cancellation goes on.
    """
    server = ModbusTcpServer(
        context, identity=identity, address=address, custom_functions=custom_functions, **kwargs
    )
    await _start_async(server, task_status)
    return server


async def StartAsyncTlsServer(
    context: Any = None,
    identity: ModbusDeviceIdentification | None = None,
    address: tuple[str, int] | None = None,
    sslctx: Any = None,
    custom_functions: Iterable[type[ModbusPDU]] | None = None,
    *,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    **kwargs: Any,
) -> ModbusTlsServer:
    """Serve Modbus/TCP Security until stopped or cancelled, then return the server.

    Args:
        context: The ``ModbusServerContext`` served.
        identity: The device identification.
        address: ``(host, port)``; default ``("127.0.0.1", 802)``.
        sslctx: A server ``ssl.SSLContext`` (or ``certfile``/``keyfile``).
        custom_functions: User-defined function codes.
        task_status: For ``nursery.start``.
        **kwargs: The options of :class:`ModbusTlsServer`.

    Returns:
        The server, once it has stopped.

    Cancellation:
        As :func:`StartAsyncTcpServer`: the server stops and closes everything it opened.
    """
    server = ModbusTlsServer(
        context,
        identity=identity,
        address=address,
        sslctx=sslctx,
        custom_functions=custom_functions,
        **kwargs,
    )
    await _start_async(server, task_status)
    return server


async def StartAsyncUdpServer(
    context: Any = None,
    identity: ModbusDeviceIdentification | None = None,
    address: tuple[str, int] | None = None,
    custom_functions: Iterable[type[ModbusPDU]] | None = None,
    *,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    **kwargs: Any,
) -> ModbusUdpServer:
    """Serve Modbus/UDP until stopped or cancelled, then return the server.

    Args:
        context: The ``ModbusServerContext`` served.
        identity: The device identification.
        address: ``(host, port)``; default ``("127.0.0.1", 502)``.
        custom_functions: User-defined function codes.
        task_status: For ``nursery.start``.
        **kwargs: The options of :class:`ModbusUdpServer`.

    Returns:
        The server, once it has stopped.

    Cancellation:
        As :func:`StartAsyncTcpServer`: the server stops and closes everything it opened.
    """
    server = ModbusUdpServer(
        context, identity=identity, address=address, custom_functions=custom_functions, **kwargs
    )
    await _start_async(server, task_status)
    return server


async def StartAsyncSerialServer(
    context: Any = None,
    identity: ModbusDeviceIdentification | None = None,
    port: str | None = None,
    custom_functions: Iterable[type[ModbusPDU]] | None = None,
    *,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    **kwargs: Any,
) -> ModbusSerialServer:
    """Serve a serial line until stopped or cancelled, then return the server.

    Args:
        context: The ``ModbusServerContext`` served.
        identity: The device identification.
        port: The serial device, or ``socket://host:port`` for RTU over TCP.
        custom_functions: User-defined function codes.
        task_status: For ``nursery.start``.
        **kwargs: The options of :class:`ModbusSerialServer`.

    Returns:
        The server, once it has stopped.

    Cancellation:
        As :func:`StartAsyncTcpServer`: the server stops and closes everything it opened.
    """
    server = ModbusSerialServer(
        context, identity=identity, port=port, custom_functions=custom_functions, **kwargs
    )
    await _start_async(server, task_status)
    return server
