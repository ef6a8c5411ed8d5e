"""The policy file: its schema, its errors (naming file, key and value), its decisions."""

from __future__ import annotations

import json
import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_modbus import ConfigurationError
from trio_modbus.security import Access, AccessRequest, Policy, Span, Table, load_policy

from ._policies import POLICY
from .conftest import policy_file


def ask(policy: Policy, role, unit=1, function=3, reads=(), writes=(), access=None, sub=None):
    if access is None:
        access = set()
        if reads:
            access.add(Access.READ)
        if writes:
            access.add(Access.WRITE)
    return policy(
        AccessRequest(role, unit, function, sub, frozenset(access), tuple(reads), tuple(writes))
    )


def hr(start, count=1):
    return Span(Table.HOLDING_REGISTERS, start, count)


def test_toml_and_json_give_the_same_policy(tmp_path):
    from_toml = load_policy(policy_file(tmp_path, POLICY))
    as_json = json.dumps(tomllib.loads(POLICY))
    from_json = load_policy(policy_file(tmp_path, as_json, "roles.json"))
    assert from_toml.roles == from_json.roles
    assert from_toml.null_role is None and from_json.null_role is None
    assert from_toml.source.endswith("roles.toml")


def test_decisions(tmp_path):
    policy = load_policy(policy_file(tmp_path, POLICY))
    assert ask(policy, "operator", reads=[hr(0, 50)])
    assert not ask(policy, "operator", reads=[hr(0, 51)])
    assert not ask(policy, "operator", unit=2, reads=[hr(0)])
    assert not ask(policy, "nobody", reads=[hr(0)])
    assert not ask(policy, None, reads=[hr(0)])
    assert ask(policy, "admin", unit=200, access={Access.ADMIN}, function=8, sub=4)
    assert not ask(policy, "viewer", access={Access.ADMIN}, function=8, sub=4)


def test_ranges_of_several_rules_add_up_and_narrowing_by_function(tmp_path):
    text = """
    [roles.a]
    [[roles.a.allow]]
    units = [1]
    access = ["read"]
    holding_registers = [[0, 9], [20, 29]]
    [[roles.a.allow]]
    units = [1]
    access = ["read"]
    holding_registers = [[10, 19]]
    functions = [3]
    [[roles.a.allow]]
    units = [1]
    access = ["diagnose"]
    functions = [8]
    sub_functions = [0]
    """
    policy = load_policy(policy_file(tmp_path, text))
    assert ask(policy, "a", reads=[hr(5, 20)])  # 5..24 across three ranges of two rules
    assert not ask(policy, "a", function=0x17, reads=[hr(5, 20)])  # the 10..19 rule is for 03
    assert not ask(policy, "a", reads=[hr(25, 10)])
    assert ask(policy, "a", function=8, sub=0, access={Access.DIAGNOSE})
    assert not ask(policy, "a", function=8, sub=0x0B, access={Access.DIAGNOSE})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            POLICY.replace('units = [1]\naccess = ["read", "write"]', "units = [1]\nacess = 1"),
            "roles.operator.allow[0].acess: unknown key; valid keys: units, access",
        ),
        (
            POLICY.replace("holding_registers = [[0, 49]]", "holding_registers = [[0, 70000]]"),
            "roles.operator.allow[0].holding_registers[0]: 70000 is out of range 0..65535",
        ),
        (
            POLICY.replace("holding_registers = [[0, 49]]", "holding_registers = [[50, 49]]"),
            "roles.operator.allow[0].holding_registers[0]: start 50 is after end 49",
        ),
        ("null_role = 'deny'\n[roles]\n", "roles: is empty"),
        ("null_role = 'deny'\n", "roles: missing"),
        ("color = 1\n[roles.a]\n", "color: unknown key; valid keys: null_role, roles"),
        (POLICY.replace('null_role = "deny"', 'null_role = "ghost"'), "null_role: 'ghost'"),
        (
            POLICY.replace('access = ["read", "write"]', 'access = ["read", "erase"]', 1),
            "roles.operator.allow[0].access[1]: 'erase' is not an access class",
        ),
        (
            POLICY.replace("units = [1]", "units = [256]", 1),
            "roles.operator.allow[0].units[0]: 256 is out of range 0..255",
        ),
        ("[roles.a]\nallow = []\n", "roles.a.allow: must be a non-empty list of rules"),
        (
            "[roles.a]\n[[roles.a.allow]]\nunits = [1]\naccess = ['read']\n",
            "roles.a.allow[0]: grants read or write but no address ranges",
        ),
        ("[roles.a\n", "not valid TOML"),
    ],
)
def test_load_errors_name_file_key_and_value(tmp_path, text, message):
    path = policy_file(tmp_path, text)
    with pytest.raises(ConfigurationError) as info:
        load_policy(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigurationError, match="cannot read the policy"):
        load_policy(tmp_path / "nope.toml")


def test_no_built_in_roles():
    policy = Policy.from_mapping(tomllib.loads(POLICY))
    for role in ("admin ", "Admin", "root", "", "*", "deny", "guest "):
        assert not ask(policy, role, reads=[hr(0)])


@given(
    ranges=st.lists(
        st.tuples(st.integers(0, 300), st.integers(0, 40)).map(lambda t: (t[0], t[0] + t[1])),
        max_size=6,
    ),
    start=st.integers(0, 340),
    count=st.integers(1, 60),
)
def test_a_span_is_covered_exactly_when_every_address_is_in_some_range(ranges, start, count):
    from trio_modbus.security._policy import _covered

    expected = all(any(lo <= a <= hi for lo, hi in ranges) for a in range(start, start + count))
    assert _covered(hr(start, count), ranges) == expected


def test_a_json_role_given_twice_is_refused_as_toml_refuses_it(tmp_path):
    text = (
        '{"roles": {"op": {"allow": [{"units": [1], "access": ["identify"]}]},'
        ' "op": {"allow": [{"units": [2], "access": ["identify"]}]}}}'
    )
    path = policy_file(tmp_path, text, "roles.json")
    with pytest.raises(ConfigurationError, match=r"roles\.json: not valid JSON: the key 'op'"):
        load_policy(path)
    toml_path = policy_file(tmp_path, "[roles.op]\n[roles.op]\n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_policy(toml_path)
