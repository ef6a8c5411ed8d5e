"""Modbus/TCP Security: roles from client certificates, policies, the authorization layer.

A Modbus/TCP Security server (:func:`~trio_modbus.serve_mbaps`) requires every client to show
a certificate signed by a CA it trusts. The certificate's role (:func:`extract_role`, from
the extension :data:`ROLE_OID`) reaches each request's ``RequestContext``; an
:class:`Authorizer` (a :class:`Policy` loaded by :func:`load_policy`, a function of your own,
or :func:`allow_authenticated`) decides each request, described as an :class:`AccessRequest`;
a denied request is answered with exception 01.

Reading roles needs ``cryptography``: install the ``security`` extra
(``pip install 'trio_modbus[security]'``).
"""

import typing

from trio_modbus._public import lazy_exports

if typing.TYPE_CHECKING:
    from ._authz import (
        DEFAULT_AUTHORIZER_TIMEOUT,
        Access,
        AccessRequest,
        AuthorizationLayer,
        Authorizer,
        Span,
        Table,
        allow_authenticated,
        describe_request,
    )
    from ._context import mbaps_ssl_context
    from ._policy import Policy, Rule, load_policy
    from ._roles import ROLE_OID, RoleError, extract_role

__all__ = [
    "DEFAULT_AUTHORIZER_TIMEOUT",
    "ROLE_OID",
    "Access",
    "AccessRequest",
    "AuthorizationLayer",
    "Authorizer",
    "Policy",
    "RoleError",
    "Rule",
    "Span",
    "Table",
    "allow_authenticated",
    "describe_request",
    "extract_role",
    "load_policy",
    "mbaps_ssl_context",
]

_LAZY = {
    **dict.fromkeys(
        [
            "DEFAULT_AUTHORIZER_TIMEOUT",
            "Access",
            "AccessRequest",
            "AuthorizationLayer",
            "Authorizer",
            "Span",
            "Table",
            "allow_authenticated",
            "describe_request",
        ],
        "trio_modbus.security._authz",
    ),
    "mbaps_ssl_context": "trio_modbus.security._context",
    **dict.fromkeys(["Policy", "Rule", "load_policy"], "trio_modbus.security._policy"),
    **dict.fromkeys(["ROLE_OID", "RoleError", "extract_role"], "trio_modbus.security._roles"),
}

__getattr__ = lazy_exports(__name__, globals(), _LAZY)
