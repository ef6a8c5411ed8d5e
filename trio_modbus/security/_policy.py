"""Declarative authorization: a policy file (TOML or JSON) mapping roles to what they may do.

The schema (TOML; JSON has the same keys)::

    null_role = "deny"               # certificates without a role: "deny", or a role name

    [roles.operator]                 # a role, named exactly as in the certificates
    [[roles.operator.allow]]         # one rule; a role has one or more
    units = [1, 2]                   # unit ids, or "*" for every unit
    access = ["read", "write"]       # access classes (see Access)
    holding_registers = [[0, 99]]    # inclusive address ranges per table
    coils = [[0, 15]]
    functions = [3, 16]              # optional: only these function codes
    sub_functions = [0]              # optional: only these 08 sub-functions / 2B MEI types

A request is allowed when its role has rules for its unit (and function) that grant every
access class it needs and, for ``read`` and ``write``, cover each span it reads or writes
with the ranges of the table concerned (ranges of several rules add up). Everything else is
denied: there are no built-in roles (spec R-28), and an unknown role can do nothing.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trio_modbus._errors import ConfigurationError

from ._authz import Access, AccessRequest, Span, Table

__all__ = ["DENY", "Policy", "Rule", "load_policy"]

DENY = "deny"  # the null_role value that denies every request of a certificate without a role

_TOP_KEYS = ("null_role", "roles")
_ROLE_KEYS = ("allow", "description")
_TABLE_KEYS = tuple(t.value for t in Table)
_RULE_KEYS = ("units", "access", "functions", "sub_functions", *_TABLE_KEYS)
_Range = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of a role: what it grants, on which units.

    Attributes:
        units: The unit ids, or None for every unit.
        access: The access classes granted.
        ranges: The inclusive address ranges granted, per table.
        functions: Only these function codes (None: any).
        sub_functions: Only these sub-functions (08) or MEI types (2B) (None: any).
    """

    units: frozenset[int] | None
    access: frozenset[Access]
    ranges: Mapping[Table, tuple[tuple[int, int], ...]]
    functions: frozenset[int] | None = None
    sub_functions: frozenset[int] | None = None

    def applies(self, request: AccessRequest) -> bool:
        """Whether the rule is about ``request``'s unit, function and sub-function."""
        if self.units is not None and request.unit not in self.units:
            return False
        if self.functions is not None and request.function not in self.functions:
            return False
        return self.sub_functions is None or request.sub_function in self.sub_functions


def _covered(span: Span, ranges: Iterable[_Range]) -> bool:
    """Whether the union of ``ranges`` holds every address of ``span``."""
    need = span.start
    for low, high in sorted(ranges):
        if low > need:
            return False
        if high >= need:
            need = high + 1
            if need > span.end:
                return True
    return need > span.end


@dataclass(frozen=True, slots=True)
class Policy:
    """Roles and their rules: an :class:`~trio_modbus.security.Authorizer`.

    Build it with :func:`load_policy` (from a file) or :meth:`from_mapping`.

    Attributes:
        roles: The rules of each role (role names compared exactly).
        null_role: The role whose rules apply to a certificate without a role; None denies
            such clients every request.
        source: Where the policy came from (a file name), for messages.
    """

    roles: Mapping[str, tuple[Rule, ...]]
    null_role: str | None = None
    source: str = "<policy>"

    def __call__(self, request: AccessRequest, /) -> bool:
        """Whether ``request`` is allowed (see the module description)."""
        role = request.role if request.role is not None else self.null_role
        if role is None:
            return False
        rules = [rule for rule in self.roles.get(role, ()) if rule.applies(request)]
        if not rules:
            return False
        for access in request.access:
            granting = [rule for rule in rules if access in rule.access]
            if not granting:
                return False
            if access is Access.READ or access is Access.WRITE:
                spans = request.reads if access is Access.READ else request.writes
                for span in spans:
                    ranges = [r for rule in granting for r in rule.ranges.get(span.table, ())]
                    if not _covered(span, ranges):
                        return False
        return True

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "<policy>") -> Policy:
        """A policy from parsed TOML or JSON (see the module description for the schema).

        Args:
            data: The parsed document.
            source: What messages name it by (the file name).

        Raises:
            ConfigurationError: Anything not in the schema, naming ``source``, the key and the
                value (unknown keys are named with the valid ones).
        """
        return _Loader(source).policy(data)

    def __repr__(self) -> str:
        return f"<Policy {self.source} roles={sorted(self.roles)!r} null_role={self.null_role!r}>"


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read a policy file: TOML (``.toml``) or JSON (``.json``) with the same schema.

    Args:
        path: The file.

    Returns:
        The policy, an authorizer to give to ``serve_mbaps`` or ``set_authorizer``.

    Raises:
        ConfigurationError: The file cannot be read or parsed, or does not follow the schema;
            the message names the file, the key and the value.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as file:
            raw = file.read()
    except OSError as exc:
        raise ConfigurationError(f"{name}: cannot read the policy ({exc})") from exc
    try:
        if name.endswith(".json"):
            data = json.loads(raw, object_pairs_hook=_no_duplicate_keys)
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        kind = "JSON" if name.endswith(".json") else "TOML"
        raise ConfigurationError(f"{name}: not valid {kind}: {exc}") from exc
    return Policy.from_mapping(data, source=name)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different (TOML refuses a key twice; so does this)."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"the key {key!r} appears twice in one object")
        found[key] = value
    return found


class _Loader:
    """Checks a parsed policy, naming the file and key of every mistake."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, message: str) -> ConfigurationError:
        return ConfigurationError(f"{self.source}: {key}: {message}")

    def table(self, value: object, key: str, allowed: Sequence[str]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key, f"must be a table, not {value!r}")
        unknown = sorted(str(k) for k in value if k not in allowed)
        if unknown:
            raise self.fail(
                f"{key}.{unknown[0]}" if key else unknown[0],
                f"unknown key; valid keys: {', '.join(allowed)}",
            )
        return value

    def policy(self, data: Mapping[str, Any]) -> Policy:
        data = self.table(data, "", _TOP_KEYS)
        roles_value = data.get("roles")
        if roles_value is None:
            raise self.fail("roles", "missing: a policy needs at least one role")
        if not isinstance(roles_value, Mapping):
            raise self.fail("roles", f"must be a table of roles, not {roles_value!r}")
        if not roles_value:
            raise self.fail("roles", "is empty: a policy needs at least one role")
        roles = {
            str(name): self.role(value, f"roles.{name}") for name, value in roles_value.items()
        }
        null = data.get("null_role", DENY)
        if not isinstance(null, str):
            raise self.fail("null_role", f"must be {DENY!r} or a role name, not {null!r}")
        if null != DENY and null not in roles:
            raise self.fail("null_role", f"{null!r} is not {DENY!r} and names no role in [roles]")
        return Policy(roles, None if null == DENY else null, self.source)

    def role(self, value: object, key: str) -> tuple[Rule, ...]:
        role = self.table(value, key, _ROLE_KEYS)
        description = role.get("description", "")
        if not isinstance(description, str):
            raise self.fail(f"{key}.description", f"must be a string, not {description!r}")
        allow = role.get("allow")
        if not isinstance(allow, list) or not allow:
            raise self.fail(f"{key}.allow", f"must be a non-empty list of rules, not {allow!r}")
        return tuple(self.rule(rule, f"{key}.allow[{i}]") for i, rule in enumerate(allow))

    def rule(self, value: object, key: str) -> Rule:
        rule = self.table(value, key, _RULE_KEYS)
        if "units" not in rule:
            raise self.fail(f"{key}.units", 'missing: a list of unit ids, or "*"')
        units = rule["units"]
        unit_set = None if units == "*" else self.ints(units, f"{key}.units", 0, 255)
        if "access" not in rule:
            raise self.fail(f"{key}.access", "missing: a list of access classes")
        access_value = rule["access"]
        if not isinstance(access_value, list) or not access_value:
            raise self.fail(
                f"{key}.access",
                f"must be a non-empty list of access classes, not {access_value!r}",
            )
        access: set[Access] = set()
        for i, item in enumerate(access_value):
            try:
                access.add(Access(item))
            except ValueError:
                raise self.fail(
                    f"{key}.access[{i}]",
                    f"{item!r} is not an access class; valid: "
                    + ", ".join(a.value for a in Access),
                ) from None
        ranges = {
            Table(name): self.ranges(rule[name], f"{key}.{name}")
            for name in _TABLE_KEYS
            if name in rule
        }
        if access & {Access.READ, Access.WRITE} and not ranges:
            raise self.fail(
                key,
                "grants read or write but no address ranges (give coils, discrete_inputs, "
                "holding_registers or input_registers)",
            )
        functions = (
            self.ints(rule["functions"], f"{key}.functions", 1, 127)
            if "functions" in rule
            else None
        )
        subs = (
            self.ints(rule["sub_functions"], f"{key}.sub_functions", 0, 0xFFFF)
            if "sub_functions" in rule
            else None
        )
        return Rule(unit_set, frozenset(access), ranges, functions, subs)

    def ints(self, value: object, key: str, low: int, high: int) -> frozenset[int]:
        if not isinstance(value, list) or not value:
            raise self.fail(key, f"must be a non-empty list of ints {low}..{high}, not {value!r}")
        for i, item in enumerate(value):
            self.int(item, f"{key}[{i}]", low, high)
        return frozenset(value)

    def int(self, value: object, key: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"{value!r} is not an int")
        if not low <= value <= high:
            raise self.fail(key, f"{value} is out of range {low}..{high}")
        return value

    def ranges(self, value: object, key: str) -> tuple[_Range, ...]:
        if not isinstance(value, list) or not value:
            raise self.fail(key, f"must be a non-empty list of [start, end] ranges, not {value!r}")
        out = []
        for i, item in enumerate(value):
            where = f"{key}[{i}]"
            if not isinstance(item, list) or len(item) != 2:
                raise self.fail(where, f"must be [start, end] (inclusive), not {item!r}")
            start = self.int(item[0], where, 0, 0xFFFF)
            end = self.int(item[1], where, 0, 0xFFFF)
            if start > end:
                raise self.fail(where, f"start {start} is after end {end}")
            out.append((start, end))
        return tuple(out)
