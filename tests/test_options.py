"""Bad server options fail at construction with a ConfigurationError naming option and value."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest

from trio_modbus import ConfigurationError, ModbusDeviceContext, ModbusServerContext
from trio_modbus.server import (
    SerialOptions,
    SerialServer,
    ServerOptions,
    TcpOptions,
    TcpServer,
    TlsOptions,
    TlsServer,
    UdpOptions,
    UdpServer,
    serve_serial,
    serve_tcp,
    serve_tls,
    serve_udp,
)

from ._tls import TlsFiles


def context() -> ModbusServerContext:
    return ModbusServerContext(ModbusDeviceContext(), single=True)


@pytest.mark.parametrize(
    ("factory", "options", "named"),
    [
        (serve_tcp, {"port": -1}, "port must be an int 0..65535 (0: any free port), not -1"),
        (serve_tcp, {"port": 65536}, "port must be an int 0..65535"),
        (serve_tcp, {"port": "502"}, "not '502'"),
        (serve_udp, {"port": 70000}, "port must be an int 0..65535"),
        (serve_tcp, {"max_in_flight": 0}, "max_in_flight must be an int >= 1, not 0"),
        (serve_tcp, {"max_connections": 0}, "max_connections must be an int >= 1, not 0"),
        (serve_tcp, {"limit_policy": "drop"}, "limit_policy must be 'evict-oldest-idle'"),
        (serve_tcp, {"idle_timeout": 0}, "idle_timeout must be a positive number of seconds"),
        (serve_tcp, {"idle_timeout": -5.0}, "not -5.0"),
        (serve_tcp, {"frame_timeout": float("inf")}, "frame_timeout must be a positive"),
        (serve_tcp, {"framer": "modbus"}, "framer must be one of 'socket', 'tls', 'rtu', 'ascii'"),
        (serve_udp, {"max_datagrams": 0}, "max_datagrams must be an int >= 1, not 0"),
        (serve_serial, {"port": "/dev/null", "framer": "socket"}, "framer of a serial server"),
        (serve_serial, {"port": "/dev/null", "parity": "X"}, "parity must be one of N, E, O"),
        (serve_serial, {"port": "/dev/null", "stopbits": 3}, "stopbits must be 1, 1.5 or 2"),
        (serve_serial, {"port": "/dev/null", "bytesize": 9}, "bytesize must be 5, 6, 7 or 8"),
        (serve_serial, {"port": "/dev/null", "baudrate": 0}, "baudrate must be a positive int"),
        (serve_serial, {"port": "/dev/null", "reopen_delay": -1}, "reopen_delay must be"),
    ],
)
def test_a_bad_option_names_itself_and_its_value(
    factory: Any, options: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        factory(context(), **options)
    assert named in str(info.value)
    assert isinstance(info.value, ValueError)  # what code written against ValueError catches


def test_a_device_context_given_as_the_server_context_is_refused() -> None:
    # A common slip: the device itself instead of the server context that maps unit ids.
    with pytest.raises(ConfigurationError, match=r"context must be a ModbusServerContext"):
        serve_tcp(ModbusDeviceContext(), port=0)


def test_missing_tls_files_are_named(tmp_path: Path, tls_files: TlsFiles) -> None:
    cert, key = tls_files.server_cert, tls_files.server_key
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(ConfigurationError, match=r"certfile=.*nope\.pem"):
        serve_tls(context(), port=0, certfile=missing, keyfile=key)
    with pytest.raises(ConfigurationError, match=r"cafile=.*nope\.pem"):
        serve_tls(context(), port=0, certfile=cert, keyfile=key, cafile=missing)
    with pytest.raises(ConfigurationError, match="needs ssl_context= or certfile="):
        serve_tls(context(), port=0)


def test_good_options_pass() -> None:
    serve_tcp(context(), port=0, max_in_flight=1, idle_timeout=0.5, frame_timeout=2)
    serve_udp(context(), port=65535, framer="rtu")
    serve_serial(context(), port="/dev/null", framer="ascii", parity="e", stopbits=1.5)


# -- each option declared once ----------------------------------------------------------------

_DECLARED = [
    (TcpServer, serve_tcp, TcpOptions),
    (TlsServer, serve_tls, TlsOptions),
    (UdpServer, serve_udp, UdpOptions),
    (SerialServer, serve_serial, SerialOptions),
]


def _options_type(function: Any) -> Any:
    hint = typing.get_type_hints(function)["options"]
    assert typing.get_origin(hint) is typing.Unpack, function
    (declared,) = typing.get_args(hint)
    return declared


def _keys(declared: Any) -> set[str]:
    return set(declared.__optional_keys__ | declared.__required_keys__)


@pytest.mark.parametrize(("cls", "serve", "declared"), _DECLARED)
def test_a_server_class_and_its_serve_function_take_the_one_declaration(
    cls: Any, serve: Any, declared: Any
) -> None:
    assert _options_type(cls.__init__) is declared
    assert _options_type(serve) is declared
    assert serve.__annotations__["return"] in (cls.__name__, cls)


def test_tls_takes_every_tcp_option_and_every_server_the_common_ones() -> None:
    assert _keys(TcpOptions) <= _keys(TlsOptions)
    for _, _, declared in _DECLARED:
        assert _keys(ServerOptions) <= _keys(declared)
    assert "reuse_port" in _keys(TlsOptions)  # it was missing once
    assert "broadcast" in _keys(TcpOptions)


@pytest.mark.parametrize(("cls", "serve", "declared"), _DECLARED)
def test_every_option_is_documented_where_the_user_reads(
    cls: Any, serve: Any, declared: Any
) -> None:
    documented = (serve.__doc__ or "") + (serve_tcp.__doc__ or "")
    missing = {key for key in _keys(declared) if f"``{key}``" not in documented}
    assert not missing


@pytest.mark.parametrize(("cls", "serve", "declared"), _DECLARED)
def test_an_unknown_option_is_refused_by_class_and_function_alike(
    cls: Any, serve: Any, declared: Any
) -> None:
    extra = {"port": "/dev/null"} if serve is serve_serial else {}
    for factory in (cls, serve):
        with pytest.raises(TypeError, match=r"unexpected keyword argument 'colour'"):
            factory(context(), colour="blue", **extra)


def test_datastore_options_with_a_service_of_ones_own_are_refused() -> None:
    from trio_modbus.service import DatastoreService

    service = DatastoreService(context())
    with pytest.raises(ConfigurationError, match=r"ignore_missing_devices=True configures"):
        serve_tcp(service=service, ignore_missing_devices=True)
    serve_tcp(service=service, ignore_missing_devices=False)  # the default: nothing to refuse
