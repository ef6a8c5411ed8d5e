"""Modbus/TCP Security: TLS on the TCP transport; :func:`serve_tls` and :func:`serve_mbaps`."""

from __future__ import annotations

import hashlib
import logging
import ssl
from typing import TYPE_CHECKING, Unpack, final

import trio

from trio_modbus._errors import ConfigurationError
from trio_modbus._ssl import server_ssl_context
from trio_modbus.datastore import ModbusServerContext

from ._client import linger
from ._clock import Connection
from ._options import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_TLS_PORT,
    InvalidRole,
    MbapsOptions,
    TlsOptions,
    check_names,
    check_seconds,
)
from ._pipeline import Session
from ._server import BaseServer
from ._tcp import TcpTransport

if TYPE_CHECKING:
    from trio_modbus.security import AuthorizationLayer, Authorizer

__all__ = ["TlsServer", "make_server_ssl_context", "serve_mbaps", "serve_tls"]

conn_log = logging.getLogger("trio_modbus.connection")
security_log = logging.getLogger("trio_modbus.security")

ALERT_FLUSH_TIMEOUT = 1.0  # seconds to send a refused client the alert that says why

# OpenSSL's certificate verification results (X509_V_ERR_*) by refusal reason.
_VERIFY_REASONS = {
    9: "not-yet-valid",  # X509_V_ERR_CERT_NOT_YET_VALID
    10: "expired",  # X509_V_ERR_CERT_HAS_EXPIRED
    2: "unknown-ca",  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
    18: "unknown-ca",  # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
    19: "unknown-ca",  # X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
    20: "unknown-ca",  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    21: "unknown-ca",  # X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
    23: "revoked",  # X509_V_ERR_CERT_REVOKED
}
# OpenSSL's reason codes (SSLError.reason) by refusal reason.
_SSL_REASONS = {
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "no-certificate",
    "UNSUPPORTED_PROTOCOL": "protocol-version",
    "WRONG_VERSION_NUMBER": "protocol-version",
    "VERSION_TOO_LOW": "protocol-version",
    "NO_PROTOCOLS_AVAILABLE": "protocol-version",
}


def classify_handshake_failure(exc: BaseException) -> str:
    """A short, stable word for why a TLS handshake failed (for statistics and logs)."""
    if isinstance(exc, trio.TooSlowError):
        return "timeout"
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ssl.SSLError):
        cause = cause.__cause__
    if cause is None:
        return "closed"
    if isinstance(cause, ssl.SSLCertVerificationError):
        return _VERIFY_REASONS.get(cause.verify_code, "bad-certificate")
    if isinstance(cause, ssl.SSLEOFError):
        return "closed"
    return _SSL_REASONS.get(str(getattr(cause, "reason", "")), "other")


async def send_pending_alert(tls: trio.SSLStream[trio.abc.Stream]) -> bool:
    """Send a failed handshake's TLS alert, which trio does not send itself.

    After a failed ``do_handshake`` the alert OpenSSL wrote (what went wrong: no
    certificate, unknown CA, expired, protocol version) waits in the ``SSLStream``'s outgoing
    buffer; trio drops it (python-trio/trio PR #3413), and the client would see a bare EOF.
    This sends it on the transport, within ALERT_FLUSH_TIMEOUT, ignoring a peer that has gone.

    Returns:
        True when an alert was sent.
    """
    outgoing = getattr(tls, "_outgoing", None)  # trio's MemoryBIO: no public way yet
    if outgoing is None or not outgoing.pending:
        return False
    data = outgoing.read()
    with trio.move_on_after(ALERT_FLUSH_TIMEOUT):
        try:
            await tls.transport_stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return False
        return True
    return False


class _Handshake:
    """Wraps each new connection in TLS, within ``timeout`` seconds.

    With an authorizer it also reads the client's role from its certificate, once, right
    after the handshake, into the session (so every request context of the connection
    carries it); a certificate whose role is invalid closes the connection (or, with
    ``invalid_role="null"``, is served with the NULL role).
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        timeout: float,
        *,
        roles: bool = False,
        invalid_role: InvalidRole = "close",
    ) -> None:
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.roles = roles
        self.invalid_role = invalid_role

    async def __call__(
        self, stream: trio.abc.Stream, conn: Connection, server: BaseServer, session: Session
    ) -> trio.abc.Stream | None:
        tls = trio.SSLStream(stream, self.ssl_context, server_side=True)
        try:
            with trio.fail_after(self.timeout):
                await tls.do_handshake()
        except (trio.TooSlowError, trio.BrokenResourceError, ssl.SSLError, OSError) as exc:
            reason = classify_handshake_failure(exc)
            counters = server.counters
            counters.handshake_failures += 1
            reasons = counters.handshake_failure_reasons
            reasons[reason] = reasons.get(reason, 0) + 1
            detail = exc.__cause__ if exc.__cause__ is not None else exc
            conn_log.warning("%s: TLS handshake failed (%s): %s", conn.peer, reason, detail)
            security_log.warning("%s: TLS handshake refused (%s): %s", conn.peer, reason, detail)
            if reason not in ("timeout", "closed") and await send_pending_alert(tls):
                # Closing a socket with unread bytes resets the connection, and a reset can
                # destroy the alert before the client reads it (a TLS 1.3 client may already
                # be sending requests): half-close, and drop what it still sends.
                await linger(stream)
            await trio.aclose_forcefully(stream)
            return None
        if self.roles and not self._identify(tls, conn, server, session):
            await trio.aclose_forcefully(tls)
            return None
        return tls

    def _identify(
        self,
        tls: trio.SSLStream[trio.abc.Stream],
        conn: Connection,
        server: BaseServer,
        session: Session,
    ) -> bool:
        """Read the client's role into ``session``; False: close the connection."""
        from trio_modbus.security._roles import RoleError, extract_role, load_certificate

        der = tls.getpeercert(binary_form=True)
        if der is None:  # pragma: no cover - the context requires a certificate
            security_log.error("%s: no client certificate after the handshake", conn.peer)
            return False
        session.certificate = der
        fingerprint = hashlib.sha256(der).hexdigest()
        subject = "?"
        try:
            cert = load_certificate(der)
            try:
                subject = cert.subject.rfc4514_string()
            except ValueError:  # stricter than OpenSSL's parser; the subject only names it
                subject = "(unparsable subject)"
            session.role = extract_role(cert)
        except RoleError as exc:
            server.counters.invalid_roles += 1
            action = "closed" if self.invalid_role == "close" else "served with the NULL role"
            security_log.warning(
                "%s: invalid role in the certificate of %r (SHA-256 %s): %s (%s); %s",
                conn.peer,
                subject,
                fingerprint,
                exc,
                exc.reason,
                action,
            )
            if self.invalid_role == "close":
                return False
            session.role = None
        security_log.info(
            "%s: session started: %r, SHA-256 %s, role %s, %s%s",
            conn.peer,
            subject,
            fingerprint,
            "NULL" if session.role is None else repr(session.role),
            tls.version(),
            " (resumed)" if tls.session_reused else "",
        )
        return True


# What make_server_ssl_context builds from; a ready ssl_context= replaces them all.
_CONTEXT_OPTIONS = (
    "certfile",
    "keyfile",
    "password",
    "cafile",
    "crlfile",
    "require_client_cert",
)


def check_security_context(ctx: ssl.SSLContext) -> None:
    """Refuse a context that cannot carry Modbus/TCP Security (client certificates, TLS 1.2+).

    Raises:
        ConfigurationError: Client certificates are not required, or TLS below 1.2 is
            allowed.
    """
    if ctx.verify_mode != ssl.CERT_REQUIRED:
        raise ConfigurationError(
            "authorizer= needs client certificates: give require_client_cert=True and "
            "cafile= (or an ssl_context whose verify_mode is ssl.CERT_REQUIRED)"
        )
    if ctx.minimum_version < ssl.TLSVersion.TLSv1_2:  # MINIMUM_SUPPORTED (-2) too
        raise ConfigurationError(
            "authorizer= needs TLS 1.2 or newer: set the ssl_context's minimum_version to "
            f"ssl.TLSVersion.TLSv1_2 (it is {ctx.minimum_version.name})"
        )


@final
class TlsServer(BaseServer):
    """A Modbus/TCP Security server: MBAP inside TLS. Create it with :func:`serve_tls`.

    Takes the options of :func:`serve_tls`.
    """

    def __init__(
        self, context: ModbusServerContext | None = None, **options: Unpack[TlsOptions]
    ) -> None:
        """Check the options and build the TLS context; nothing is bound before ``serve``."""
        check_names(options, TlsOptions, "serve_tls")
        authorizer = options.get("authorizer")
        given = options.get("ssl_context")
        if given is not None:
            files = [name for name in _CONTEXT_OPTIONS if options.get(name) is not None]
            if files:
                raise ConfigurationError(
                    f"ssl_context= is a ready context: {', '.join(files)} would be ignored;"
                    " put them in the context, or leave ssl_context out"
                )
        self.ssl_context = given or make_server_ssl_context(
            certfile=options.get("certfile"),
            keyfile=options.get("keyfile"),
            password=options.get("password"),
            cafile=options.get("cafile"),
            require_client_cert=options.get("require_client_cert", authorizer is not None),
            crlfile=options.get("crlfile"),
        )
        timeout = options.get("handshake_timeout", DEFAULT_HANDSHAKE_TIMEOUT)
        check_seconds("handshake_timeout", timeout, "")
        invalid_role = options.get("invalid_role", "close")
        if invalid_role not in ("close", "null"):
            raise ConfigurationError(
                f"invalid_role must be 'close' or 'null', not {invalid_role!r}"
            )
        if authorizer is not None:
            check_security_context(self.ssl_context)
        handshake = _Handshake(
            self.ssl_context,
            timeout,
            roles=authorizer is not None,
            invalid_role=invalid_role,
        )
        self.listener = TcpTransport(options, DEFAULT_TLS_PORT, handshake)
        super().__init__(context, self.listener, options)
        self.authorization: AuthorizationLayer | None = None
        if authorizer is not None:
            from trio_modbus.security._authz import (
                DEFAULT_AUTHORIZER_TIMEOUT,
                AuthorizationLayer,
            )
            from trio_modbus.security._roles import require_cryptography

            require_cryptography()
            # Outermost: authorization comes before unit routing, address checks and every
            # side effect; a service that sees every request also turns the fast lane off.
            self.authorization = AuthorizationLayer(
                self.service,
                authorizer,
                timeout=options.get("authorizer_timeout", DEFAULT_AUTHORIZER_TIMEOUT),
                counters=self.counters,
            )
            self.service = self.pipeline.service = self.authorization

    def set_authorizer(self, authorizer: Authorizer) -> None:
        """Authorize every request from now on with ``authorizer`` (a new policy, say).

        Atomic while serving: requests being authorized finish with the authorizer they
        started with; every later request, on every connection, gets the new one.

        Raises:
            RuntimeError: The server was built without ``authorizer=``.
            ConfigurationError: ``authorizer`` is not callable.
        """
        if self.authorization is None:
            raise RuntimeError(
                "this server has no authorization layer: build it with authorizer= "
                "(serve_mbaps, or serve_tls with client certificates)"
            )
        self.authorization.set_authorizer(authorizer)

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); with ``port=0`` the port the system chose."""
        return (self.listener.host, self.listener.port)


def make_server_ssl_context(
    *,
    certfile: str | None,
    keyfile: str | None = None,
    password: str | None = None,
    cafile: str | None = None,
    require_client_cert: bool = False,
    crlfile: str | None = None,
) -> ssl.SSLContext:
    """Build a server-side TLS context: TLS 1.2 or newer, optional client certificates.

    Args:
        certfile: PEM file with the server certificate (and key, unless ``keyfile``).
        keyfile: PEM file with the private key.
        password: Password of the key, if encrypted.
        cafile: PEM file of the CAs that sign client certificates.
        require_client_cert: Refuse clients without a valid certificate (Modbus/TCP
            Security's mutual authentication).
        crlfile: PEM file of certificate revocation lists, checked for client certificates.

    Raises:
        ConfigurationError: No certificate was given, or a file is missing, unreadable or not
            what it should be (named in the message).
    """
    if certfile is None:
        raise ConfigurationError("a TLS server needs ssl_context= or certfile= (and keyfile=)")
    return server_ssl_context(
        certfile,
        keyfile,
        password=password,
        cafile=cafile,
        require_client_cert=require_client_cert,
        crlfile=crlfile,
    )


def serve_tls(
    context: ModbusServerContext | None = None, **options: Unpack[TlsOptions]
) -> TlsServer:
    """A Modbus/TCP Security server: MBAP inside TLS 1.2+.

    Example (the test recipe: port 0 picks a free port)::

        async with serve_tls(context, port=0, certfile="server.pem", keyfile="server.key",
                             cafile="ca.pem", require_client_cert=True) as server:
            host, port = server.address
            ...

    Args:
        context: A ``ModbusServerContext`` (or give ``service=``).
        **options: Every option of :func:`~trio_modbus.server.serve_tcp` (``port`` defaults
            to 802; ``trace_packet`` and ``stream_wrapper`` see the plaintext inside TLS),
            and:

            - ``ssl_context``: A ready server ``ssl.SSLContext``; or build one from the
              files below.
            - ``certfile``: Server certificate (PEM).
            - ``keyfile``: Server key (PEM).
            - ``password``: Key password.
            - ``cafile``: CAs that sign client certificates.
            - ``require_client_cert``: Refuse clients without a valid certificate (True
              when an ``authorizer`` is given).
            - ``crlfile``: Certificate revocation lists (PEM) checked for client
              certificates.
            - ``handshake_timeout``: Seconds a client has to finish the TLS handshake (10).
            - ``authorizer``: Authorize every request by the role of the client's
              certificate (see :func:`serve_mbaps`); needs client certificates.
            - ``authorizer_timeout``: Seconds an async authorizer may take (1); a slower
              one denies the request.
            - ``invalid_role``: ``"close"`` (default) closes a client whose certificate's
              role extension is invalid; ``"null"`` serves it with the NULL role.

    Returns:
        The server (not yet running).

    Raises:
        ConfigurationError: A bad option value, or a certificate file that cannot be loaded.
        TypeError: An unknown option, or neither (or both) of ``context`` and ``service``.
    """
    return TlsServer(context, **options)


def serve_mbaps(
    context: ModbusServerContext | None = None,
    *,
    certfile: str,
    keyfile: str | None,
    cafile: str,
    authorizer: Authorizer,
    **options: Unpack[MbapsOptions],
) -> TlsServer:
    """A Modbus/TCP Security server: mutual TLS, roles from certificates, authorization.

    TLS 1.2 or newer only; every client must present a certificate signed by a CA of
    ``cafile`` (chains through intermediates are followed); renegotiation is off; session
    resumption works (a resumed session keeps its role). Right after the handshake the role
    is read from the client certificate (see :func:`~trio_modbus.security.extract_role`)
    and every request of the connection is authorized by ``authorizer`` before unit
    routing, address checks and execution: a denial is answered with exception 01.

    ``authorizer`` is required: to let every authenticated client do everything, say so with
    :func:`~trio_modbus.security.allow_authenticated`.

    Example (the test recipe: port 0 picks a free port)::

        policy = load_policy("roles.toml")
        async with serve_mbaps(context, port=0, certfile="server.pem", keyfile="server.key",
                               cafile="ca.pem", authorizer=policy) as server:
            host, port = server.address
            ...
            server.set_authorizer(load_policy("roles.toml"))  # reload, while serving

    Args:
        context: A ``ModbusServerContext`` (or give ``service=``).
        certfile: Server certificate (PEM), with its chain.
        keyfile: Server key (PEM); None when ``certfile`` holds it.
        cafile: The CAs that sign client certificates (PEM).
        authorizer: Decides each request (a :class:`~trio_modbus.security.Policy`, a
            function, or ``allow_authenticated``).
        **options: Every option of :func:`serve_tcp` (``port`` defaults to 802), and
            ``password``, ``crlfile``, ``handshake_timeout``, ``authorizer_timeout`` and
            ``invalid_role`` as for :func:`serve_tls`.

    Returns:
        The server (not yet running).

    Raises:
        ConfigurationError: A bad option value, or a file that cannot be loaded.
        ImportError: ``cryptography`` is not installed (the ``security`` extra).
        TypeError: An unknown option, or neither (or both) of ``context`` and ``service``.
    """
    from trio_modbus.security._authz import check_authorizer
    from trio_modbus.security._context import mbaps_ssl_context

    check_names(options, MbapsOptions, "serve_mbaps")
    check_authorizer(authorizer)
    ssl_context = mbaps_ssl_context(
        certfile,
        keyfile,
        cafile,
        crlfile=options.pop("crlfile", None),
        password=options.pop("password", None),
    )
    return TlsServer(context, ssl_context=ssl_context, authorizer=authorizer, **options)
