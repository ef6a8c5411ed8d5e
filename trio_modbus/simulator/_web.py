"""The simulator's web pages: Jinja2 templates, static files, security headers, cookie login.

The pages are server-rendered (they work without JavaScript); ``static/app.js`` makes their
tables live from the ``/api/v1`` event streams. Templates and static files come from
``trio_modbus/simulator/web/``; a ``web_app_path`` folder overrides them file by file
(``<web_app_path>/templates/<name>.html``, ``<web_app_path>/static/<name>``). Every page is
sent with a strict Content-Security-Policy: no inline script or style anywhere.

The forms' meaning (pymodbus's "Add", "Set", "Simulate", ...) is in ``_compat_http``; this
module only renders.
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from ._server import ModbusSimulatorServer

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "SESSION_COOKIE",
    "SecurityHeaders",
    "WebTemplates",
    "build_html",
    "has_session",
    "web_routes",
]

WEB_ROOT = Path(__file__).resolve().parent / "web"  # the package's templates and static files
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SESSION_COOKIE = "trio_modbus_session"  # the login cookie's name
_SESSION_SALT = b"trio_modbus simulator web session"
MAX_LOGIN_BODY = 4096  # bytes a login form may have
CALL_ROWS = 500  # calls a page shows at most (the newest)
PAGE_DEFAULTS = {
    "message": "",
    "error": False,
    "refresh": 0,
    "refresh_url": "",
    "page": "",
    "title": "",
}


class SecurityHeaders:
    """ASGI middleware: the Content-Security-Policy and ``nosniff`` on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, adding the headers to the response's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if b"referrer-policy" not in names:
                    headers.append((b"referrer-policy", b"same-origin"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _environment(loader: jinja2.BaseLoader | None = None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=loader,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["hexcode"] = lambda value: "" if value is None else f"{int(value):02X}"
    return env


def build_html(html_template: str, json_data: Mapping[str, Any]) -> str:
    """Render a Jinja2 template text with ``json_data``; every value is HTML-escaped.

    Args:
        html_template: The template's text (Jinja2 syntax: ``{{ name }}``, ``{% for %}``).
        json_data: The names the template uses.

    Returns:
        The HTML.

    Raises:
        ValueError: The template is malformed or uses a name ``json_data`` lacks (the
            Jinja2 error is its cause).
    """
    try:
        return _environment().from_string(html_template).render(dict(json_data))
    except jinja2.TemplateError as exc:
        raise ValueError(f"the HTML template: {exc}") from exc


class WebTemplates:
    """The pages' templates and static files, ``web_app_path``'s first, then the package's.

    Args:
        web_app_path: A folder with ``templates/`` and/or ``static/`` files that replace the
            package's of the same name; None: the package's only.
    """

    def __init__(self, web_app_path: str | os.PathLike[str] | None = None) -> None:
        self.roots = [Path(web_app_path)] if web_app_path is not None else []
        self.roots.append(WEB_ROOT)
        self.env = _environment(
            jinja2.FileSystemLoader([str(root / "templates") for root in self.roots])
        )

    def render(self, name: str, **context: Any) -> str:
        """The HTML of template ``name`` with ``context`` (``PAGE_DEFAULTS`` filling gaps)."""
        return self.env.get_template(name).render({**PAGE_DEFAULTS, **context})

    def page(self, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        """An HTML response of template ``name``."""
        return HTMLResponse(self.render(name, **context), status_code=status_code)

    def static_file(self, name: str) -> Path | None:
        """The file ``/static/<name>`` serves, or None (unknown, or outside the folders)."""
        parts = name.split("/")
        if not name or "\x00" in name or any(p in ("", ".", "..") or "\\" in p for p in parts):
            return None
        for root in self.roots:
            folder = (root / "static").resolve()
            candidate = (folder / name).resolve()
            if candidate.is_relative_to(folder) and candidate.is_file():
                return candidate
        return None


def session_value(token: str) -> str:
    """The login cookie's value for ``token`` (a keyed hash: the cookie never holds it)."""
    return hmac.new(token.encode(), _SESSION_SALT, hashlib.sha256).hexdigest()


def has_session(request: Request, token: str) -> bool:
    """Whether the request carries the login cookie of ``token``."""
    given = request.cookies.get(SESSION_COOKIE)
    return given is not None and hmac.compare_digest(given.encode(), session_value(token).encode())


def _local_target(target: str | None) -> str:
    """Where to go after login: a path of this server only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return "/"  # e.g. "/\t/evil.example": urlsplit drops the tab and finds a host
    return parts.path + (f"?{parts.query}" if parts.query else "")


def web_routes(simulator: ModbusSimulatorServer, token: str | None) -> list[Route]:
    """The routes of the static files and of the login form.

    Args:
        simulator: The simulator (its ``web_app_path``).
        token: The simulator's token, or None (then ``/login`` says none is needed).

    Returns:
        ``GET /static/<name>``, ``GET /login`` and ``POST /login``.
    """
    templates = WebTemplates(simulator.web_app_path)

    async def static(request: Request) -> Response:
        path = templates.static_file(request.path_params["name"])
        if path is None:
            return Response("no such file", status_code=404, media_type="text/plain")
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if path.suffix == ".js":
            media_type = "text/javascript"
        return Response(
            path.read_bytes(), media_type=media_type, headers={"cache-control": "no-cache"}
        )

    def login_page(status: int, message: str, target: str) -> Response:
        return templates.page(
            "login.html",
            status_code=status,
            page="login",
            title="Log in",
            message=message,
            target=target,
            needs_token=token is not None,
            refresh=0,
        )

    async def login_form(request: Request) -> Response:
        return login_page(200, "", _local_target(request.query_params.get("next")))

    async def login(request: Request) -> Response:
        origin = request.headers.get("origin")
        if (
            origin is not None
            and urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower()
        ) or request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
            return login_page(403, "cross-site login refused", "/")
        body = await request.body()
        if len(body) > MAX_LOGIN_BODY:
            return login_page(400, "the form is too large", "/")
        fields = parse_qs(body.decode("utf-8", "replace"))
        target = _local_target((fields.get("next") or ["/"])[0])
        given = (fields.get("token") or [""])[0]
        if token is None:
            return RedirectResponse(target, status_code=303)
        if not hmac.compare_digest(given.encode(), token.encode()):
            return login_page(401, "wrong token", target)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE, session_value(token), httponly=True, samesite="strict", path="/"
        )
        return response

    return [
        Route("/static/{name:path}", static, methods=["GET"]),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
    ]
