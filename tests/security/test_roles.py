"""Role extraction: exact, strict."""

from __future__ import annotations

import pytest

from trio_modbus.security import ROLE_OID, RoleError, extract_role

from ._pki import der_string, utf8_string


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("operator", "operator"),
        ("norole", None),
        ("trailing", "operator "),
        ("upper", "Operator"),
        ("long", "r" * 200),
        ("unicode", "Bediener-Ä-東京"),
    ],
)
def test_roles_extract_exactly(pki, name, role):
    cert = pki.certs[name]
    assert extract_role(cert) == role
    from cryptography.hazmat.primitives.serialization import Encoding

    assert extract_role(cert.public_bytes(Encoding.DER)) == role


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("duplicate", "duplicate"),
        ("printable", "wrong-type"),
        ("baddern", "bad-der"),
        ("badder_long", "bad-der"),
        ("badutf8", "bad-der"),
    ],
)
def test_invalid_roles_raise(pki, name, reason):
    with pytest.raises(RoleError) as info:
        extract_role(pki.certs[name])
    assert info.value.reason == reason


def test_long_form_length_is_parsed():
    from trio_modbus.security._roles import parse_utf8_string

    assert parse_utf8_string(utf8_string("x" * 300)) == "x" * 300
    assert parse_utf8_string(der_string(0x0C, b"")) == ""
    with pytest.raises(RoleError):
        parse_utf8_string(b"\x0c\x82\x00\x05hello")  # a leading zero length byte
    with pytest.raises(RoleError):
        parse_utf8_string(b"\x0c\x05hello!")  # trailing bytes


def test_role_oid():
    assert ROLE_OID == "1.3.6.1.4.1.50316.802.1"


def test_not_a_certificate():
    with pytest.raises(RoleError) as info:
        extract_role(b"\x30\x03\x02\x01\x00")
    assert info.value.reason == "bad-certificate"
