import pytest

from trio_modbus._errors import ConfigurationError, ModbusError
from trio_modbus.datastore import (
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusServerContext,
    NoSuchIdException,
)


def test_single_with_devices_spelling() -> None:
    ctx = ModbusDeviceContext()
    server = ModbusServerContext(devices=ctx, single=True)
    assert server.single
    assert server[0] is ctx
    assert server[17] is ctx
    assert server[255] is ctx
    assert 17 in server
    assert server.device_ids() == [0]
    assert server.slaves() == [0]


def test_single_inferred_from_a_context() -> None:
    ctx = ModbusDeviceContext()
    server = ModbusServerContext(device_default=ctx)
    assert server.single
    assert server[3] is ctx
    positional = ModbusServerContext(ctx)
    assert positional.single


def test_seed_example_multi_device() -> None:
    one = ModbusDeviceContext(hr=ModbusSequentialDataBlock(0, [10, 20, 30]))
    two = ModbusDeviceContext(hr=ModbusSequentialDataBlock(0, [100, 200, 300]))
    server = ModbusServerContext(single=False)
    server[1] = one
    server[2] = two
    assert server[1] is one
    assert server[2] is two
    assert 3 not in server
    with pytest.raises(NoSuchIdException):
        server[3]
    assert server.device_ids() == [1, 2]
    assert list(server) == [(1, one), (2, two)]
    assert len(server) == 2


def test_mapping_infers_multi_and_is_copied() -> None:
    one = ModbusDeviceContext()
    mapping = {1: one}
    server = ModbusServerContext(devices=mapping)
    assert not server.single
    mapping[2] = one
    assert 2 not in server
    assert ModbusServerContext().single is False
    assert ModbusServerContext().device_ids() == []


def test_key_zero_fallback() -> None:
    zero = ModbusDeviceContext()
    one = ModbusDeviceContext()
    server = ModbusServerContext(devices={0: zero, 1: one})
    assert server[1] is one
    assert server[200] is zero
    assert 200 in server
    assert server.get(200) is zero
    del server[0]
    assert 200 not in server
    assert server.get(200) is None
    assert server.get(200, one) is one


def test_single_false_with_one_context_makes_it_unit_zero() -> None:
    ctx = ModbusDeviceContext()
    server = ModbusServerContext(device_default=ctx, single=False)
    assert server.device_ids() == [0]
    assert server[9] is ctx
    other = ModbusDeviceContext()
    server[9] = other
    assert server[9] is other
    assert server[8] is ctx


def test_single_true_without_context_serves_a_fresh_one() -> None:
    a = ModbusServerContext(single=True)
    b = ModbusServerContext(single=True)
    assert isinstance(a[1], ModbusDeviceContext)
    assert a[1] is not b[1]


def test_single_setitem_replaces_and_delitem_refused() -> None:
    server = ModbusServerContext(devices=ModbusDeviceContext())
    new = ModbusDeviceContext()
    server[5] = new
    assert server[0] is new
    assert server.device_ids() == [0]
    with pytest.raises(ConfigurationError):
        del server[0]


def test_delitem_multi() -> None:
    server = ModbusServerContext(devices={1: ModbusDeviceContext()})
    del server[1]
    assert 1 not in server
    with pytest.raises(NoSuchIdException) as info:
        del server[1]
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, ModbusError)
    with pytest.raises(ConfigurationError):
        del server[256]


def test_bad_unit_ids() -> None:
    server = ModbusServerContext()
    for bad in (-1, 256, 1000):
        with pytest.raises(ConfigurationError):
            server[bad] = ModbusDeviceContext()
        assert bad not in server
    with pytest.raises(ValueError):
        server[True] = ModbusDeviceContext()
    with pytest.raises(ConfigurationError):
        ModbusServerContext(devices={300: ModbusDeviceContext()})
    assert "1" not in server
    server[255] = ModbusDeviceContext()
    server[0] = ModbusDeviceContext()
    assert 256 not in server


def test_spellings_are_exclusive_and_unknown_kwargs_named() -> None:
    ctx = ModbusDeviceContext()
    with pytest.raises(TypeError):
        ModbusServerContext(devices=ctx, device_default=ctx)
    with pytest.raises(TypeError):
        ModbusServerContext(device_default=ctx, slaves={1: ctx})
    with pytest.raises(TypeError, match="bogus, other"):
        ModbusServerContext(devices=ctx, other=1, bogus=2)
    old = ModbusServerContext(slaves={1: ctx}, single=False)
    assert old[1] is ctx


def test_single_with_mapping_refused() -> None:
    with pytest.raises(ConfigurationError):
        ModbusServerContext(devices={1: ModbusDeviceContext()}, single=True)


def test_no_such_id_message() -> None:
    server = ModbusServerContext(devices={1: ModbusDeviceContext()})
    with pytest.raises(NoSuchIdException, match="unit id 7"):
        server[7]


def test_async_values_through_server_context() -> None:
    ctx = ModbusDeviceContext(zero_mode=True)
    server = ModbusServerContext(devices={1: ctx})
    coro = server.async_setValues(1, 6, 2, [9])
    with pytest.raises(StopIteration):
        coro.send(None)
    coro2 = server.async_getValues(1, 3, 2)
    with pytest.raises(StopIteration) as done:
        coro2.send(None)
    assert done.value.value == [9]
