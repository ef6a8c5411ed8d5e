"""Roles from client certificates: the Modbus/TCP Security role extension, parsed strictly.

A client certificate carries at most one role, in the X.509v3 extension
:data:`ROLE_OID` (1.3.6.1.4.1.50316.802.1) whose value is a DER ``UTF8String``. A certificate
without the extension has the NULL role (None), which the authorizer still sees (spec R-23).
A certificate whose role cannot be trusted (the extension twice, another string type, bad DER,
invalid UTF-8) raises :class:`RoleError`: the server closes such a connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trio_modbus._errors import ModbusError

if TYPE_CHECKING:
    from cryptography import x509

__all__ = [
    "ROLE_OID",
    "RoleError",
    "extract_role",
    "load_certificate",
    "parse_utf8_string",
    "require_cryptography",
]

ROLE_OID = "1.3.6.1.4.1.50316.802.1"  # the Modbus/TCP Security role extension
_UTF8_STRING = 0x0C  # the ASN.1 universal tag of UTF8String

_EXTRA = (
    "trio_modbus.security needs the 'cryptography' package: install the 'security' extra "
    "(pip install 'trio_modbus[security]')"
)


class RoleError(ModbusError):
    """A client certificate whose role extension is not one valid DER UTF8String.

    Attributes:
        reason: A short, stable word for statistics and logs: ``"duplicate"``,
            ``"wrong-type"``, ``"bad-der"`` or ``"bad-certificate"``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def require_cryptography() -> None:
    """Check that ``cryptography`` (the ``security`` extra) is installed.

    Raises:
        ImportError: It is not; the message names the extra.
    """
    try:
        import cryptography  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
        raise ImportError(_EXTRA) from exc


def load_certificate(der: bytes) -> x509.Certificate:
    """A certificate from its DER bytes (as ``SSLObject.getpeercert(binary_form=True)`` gives).

    Raises:
        ImportError: ``cryptography`` is not installed (the ``security`` extra).
        RoleError: The bytes are not a certificate (reason ``"bad-certificate"``).
    """
    require_cryptography()
    from cryptography import x509

    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise RoleError("bad-certificate", f"not a DER certificate: {exc}") from exc


def extract_role(cert: x509.Certificate | bytes) -> str | None:
    """The Modbus role of a client certificate, exactly as it is written; None: no role.

    The value is returned exactly (no trimming, no case folding, no normalisation): roles are
    compared exactly.

    Args:
        cert: A ``cryptography`` certificate, or its DER bytes.

    Returns:
        The role, or None when the certificate has no role extension (the NULL role).

    Raises:
        ImportError: ``cryptography`` is not installed (the ``security`` extra).
        RoleError: The extension appears more than once, is not a UTF8String, is not valid
            DER or not valid UTF-8; or the certificate's extensions cannot be parsed.
    """
    require_cryptography()
    from cryptography import x509

    if isinstance(cert, bytes | bytearray):
        cert = load_certificate(bytes(cert))
    oid = x509.ObjectIdentifier(ROLE_OID)
    try:
        extensions = cert.extensions
    except x509.DuplicateExtension as exc:
        if exc.oid == oid:
            raise RoleError("duplicate", "the role extension appears more than once") from exc
        raise RoleError("bad-certificate", f"duplicate extension {exc.oid.dotted_string}") from exc
    except ValueError as exc:
        raise RoleError("bad-certificate", f"the extensions cannot be parsed: {exc}") from exc
    found = [ext for ext in extensions if ext.oid == oid]
    if not found:
        return None
    if len(found) > 1:  # pragma: no cover - cryptography reports duplicates itself
        raise RoleError("duplicate", "the role extension appears more than once")
    value = found[0].value
    raw = getattr(value, "value", None)
    if not isinstance(raw, bytes):  # pragma: no cover - an OID cryptography would parse
        raise RoleError("wrong-type", f"the role extension is not a string: {value!r}")
    return parse_utf8_string(raw)


def parse_utf8_string(der: bytes) -> str:
    """The text of one DER-encoded ASN.1 UTF8String, and nothing after it.

    The tag is looked at first (to tell another string type from broken bytes); the value
    is decoded by ``cryptography``'s strict DER reader (shortest length form, no trailing
    bytes, valid UTF-8).

    Raises:
        RoleError: Another type (``"wrong-type"``), or not valid DER or UTF-8 (``"bad-der"``).
    """
    from cryptography.hazmat import asn1

    if not der:
        raise RoleError("bad-der", "the role extension is empty")
    if der[0] != _UTF8_STRING:
        raise RoleError("wrong-type", f"the role is not a UTF8String (ASN.1 tag 0x{der[0]:02X})")
    try:
        text: str = asn1.decode_der(str, der)
    except ValueError as exc:
        raise RoleError("bad-der", f"the role is not a valid DER UTF8String: {exc}") from exc
    return text
