"""The local web server of ``routilux-replay ui``: static page, JSON API, live updates.

A thin HTTP layer over :class:`~replay_tools.ui.explorer.Explorer`, on the standard
library's ``ThreadingHTTPServer`` (a local, read-only tool needs nothing more).

Safety, since a browser talks to it:

* it binds ``127.0.0.1`` by default and then only answers requests whose ``Host`` header
  names that address or ``localhost`` (a page elsewhere on the web cannot reach it by
  pointing a DNS name at 127.0.0.1: "DNS rebinding");
* bound to any other address it requires a token, printed at start in the page's URL;
  the page keeps it in a same-site, HTTP-only cookie, and every request without the
  right token is refused (compared in constant time);
* read-only: only GET and HEAD exist; it never writes to the job (the log is opened
  read-only and no lock is taken);
* every parameter is validated by the explorer; nothing is evaluated as code;
* pages are served with a strict Content-Security-Policy (only this server's own script,
  style and API), and responses are never cached.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
import sys
import threading
import traceback
from collections.abc import Callable
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..errors import ReplayError
from .catalog import Catalog
from .display import dumps
from .errors import BadRequestError, PortInUseError
from .explorer import Explorer

__all__ = ["STATIC_FILES", "UiServer", "is_loopback"]

#: The files the page is made of (package data in ``replay_tools/ui/static``).
STATIC_FILES = {"index.html": "text/html", "app.js": "text/javascript", "app.css": "text/css"}

_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_COOKIE = "replay_token"
# Live connections send a comment line this often, so proxies and browsers keep them open.
_HEARTBEAT = 15.0


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def static_bytes(name: str) -> bytes:
    """The bytes of one of :data:`STATIC_FILES`."""
    return resources.files("replay_tools.ui").joinpath("static").joinpath(name).read_bytes()


class UiServer:
    """Serve one job's page and API, or a job store's jobs to pick from.

    Args:
        target: an :class:`Explorer` (one job; its background threads are started by the
            caller), or a :class:`~replay_tools.ui.catalog.Catalog` (the page lists the
            jobs and every API request names one with ``job=``).
        host: the address to bind (default loopback).
        port: the TCP port (0: any free one).
        token: required from clients; generated when ``host`` is not loopback and none is given.
        log: where to write one line per request (``None``: quiet).

    Raises:
        PortInUseError: the port is taken.
    """

    def __init__(self, target: Explorer | Catalog, host: str = "127.0.0.1", port: int = 0, *,
                 token: str | None = None, log: Callable[[str], None] | None = None) -> None:
        self.catalog = target if isinstance(target, Catalog) else None
        self.explorer = target if isinstance(target, Explorer) else None
        self.host = host
        if token is None and not is_loopback(host):
            token = secrets.token_urlsafe(24)
        self.token = token
        self.log = log
        self._closing = threading.Event()
        handler = _make_handler(self)
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise PortInUseError(host, port, exc.strerror or str(exc)) from None
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        """The page's address (with the token, when one is required)."""
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if ":" in shown and not shown.startswith("["):
            shown = f"[{shown}]"
        base = f"http://{shown}:{self.port}/"
        return base + (f"?token={self.token}" if self.token else "")

    def allowed_host(self, header: str | None) -> bool:
        """Whether a request's ``Host`` header may be answered (see the module docstring)."""
        if self.token is not None:
            return True  # the token is the guard when bound beyond loopback
        if not header:
            return False
        host = header.rsplit(":", 1)[0] if not header.endswith("]") else header
        return is_loopback(host.strip("[]")) and header.endswith(f":{self.port}")

    def token_ok(self, given: str | None) -> bool:
        """Whether ``given`` is the required token (always True when none is required)."""
        if self.token is None:
            return True
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` (or Ctrl-C in the caller)."""
        self.httpd.serve_forever(poll_interval=0.2)

    def start_in_thread(self) -> threading.Thread:
        """Serve from a daemon thread (tests and benchmarks); returns it."""
        thread = threading.Thread(target=self.serve_forever, name="replay-ui-http", daemon=True)
        thread.start()
        return thread

    def shutdown(self) -> None:
        """Stop serving, end live connections and close the socket."""
        self._closing.set()
        for explorer in self.catalog.explorers() if self.catalog is not None else [self.explorer]:
            if explorer is not None:
                with explorer.index.changed:
                    explorer.index.changed.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()

    def explorer_for(self, query: dict[str, list[str]]) -> Explorer:
        """The explorer a request is about: the one job, or the store's job named by ``job=``."""
        if self.catalog is None:
            assert self.explorer is not None
            return self.explorer
        values = query.get("job") or []
        if len(values) > 1:
            raise BadRequestError("job", "given more than once")
        return self.catalog.explorer(values[0] if values else None)

    @property
    def closing(self) -> bool:
        """True once :meth:`shutdown` was called."""
        return self._closing.is_set()


_JSON_ROUTES = {
    "meta": Explorer.meta,
    "rows": Explorer.rows,
    "position": Explorer.position,
    "event": Explorer.event,
    "window": Explorer.window,
    "diff": Explorer.diff,
    "blame": Explorer.blame,
    "bisect": Explorer.bisect,
    "failure": Explorer.failure,
    "version_at": Explorer.version_at,
    "verify": Explorer.verify,
    "timeline": Explorer.timeline,
}


def _make_handler(server: UiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "routilux-replay-ui"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            if server.log is not None:
                server.log(f"{self.address_string()} {format % args}")

        # -- guards ----------------------------------------------------------------------
        def _token_from_request(self, query: dict[str, list[str]]) -> str | None:
            given = query.get("token", [None])[0] or self.headers.get("X-Replay-Token")
            if given:
                return given
            cookie = SimpleCookie(self.headers.get("Cookie", ""))
            morsel = cookie.get(_COOKIE)
            return morsel.value if morsel is not None else None

        def _guard(self, query: dict[str, list[str]]) -> bool:
            if not server.allowed_host(self.headers.get("Host")):
                self._error(HTTPStatus.FORBIDDEN, "this server answers only requests to its own local address")
                return False
            if not server.token_ok(self._token_from_request(query)):
                self._error(HTTPStatus.FORBIDDEN, "a valid token is required: open the URL printed at start")
                return False
            return True

        # -- responses --------------------------------------------------------------------
        def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Content-Security-Policy", _CSP)
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, obj: Any) -> None:
            self._send(status, dumps(obj), "application/json; charset=utf-8")

        def _error(self, status: int, message: str, **extra: Any) -> None:
            self._json(status, {"error": message, **extra})

        # -- methods ----------------------------------------------------------------------
        def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
            self.do_GET()

        def do_GET(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            try:
                query = parse_qs(parts.query, keep_blank_values=True, max_num_fields=32, strict_parsing=False)
            except ValueError:
                self._error(HTTPStatus.BAD_REQUEST, "too many parameters")
                return
            if not self._guard(query):
                return
            route = parts.path
            try:
                if route in ("/", "/index.html") or route.startswith("/static/"):
                    self._route(route, query, None)
                elif route == "/api/jobs":
                    if server.catalog is None:
                        self._error(HTTPStatus.NOT_FOUND, "this server shows one job, not a store")
                    else:
                        self._json(HTTPStatus.OK, server.catalog.jobs(query))
                elif route == "/api/live":
                    self._live(server.explorer_for(query))
                elif route == "/api/tasks" or (route.startswith("/api/") and route[5:] in _JSON_ROUTES):
                    explorer = server.explorer_for(query)
                    with explorer.serving():
                        self._route(route, query, explorer)
                else:
                    self._error(HTTPStatus.NOT_FOUND, f"no such page: {route[:80]}")
            except BadRequestError as exc:
                self._error(HTTPStatus.BAD_REQUEST, str(exc), param=exc.param)
            except ReplayError as exc:
                self._error(HTTPStatus.UNPROCESSABLE_ENTITY, str(exc))
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _route(self, route: str, query: dict[str, list[str]], explorer: Explorer | None) -> None:
            try:
                if route in ("/", "/index.html"):
                    self._page(query)
                elif route.startswith("/static/"):
                    self._static(route[len("/static/"):])
                elif route == "/api/tasks" and explorer is not None:
                    self._send(HTTPStatus.OK, explorer.tasks_binary(query), "application/octet-stream")
                elif route.startswith("/api/") and route[5:] in _JSON_ROUTES and explorer is not None:
                    self._json(HTTPStatus.OK, _JSON_ROUTES[route[5:]](explorer, query))
                else:
                    self._error(HTTPStatus.NOT_FOUND, f"no such page: {route[:80]}")
            except BadRequestError as exc:
                self._error(HTTPStatus.BAD_REQUEST, str(exc), param=exc.param)
            except ReplayError as exc:
                self._error(HTTPStatus.UNPROCESSABLE_ENTITY, str(exc))
            except (BrokenPipeError, ConnectionResetError):
                pass  # the page went away
            except Exception as exc:  # a bug: say so on the page, keep the traceback on stderr
                traceback.print_exc(file=sys.stderr)
                self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(exc).__name__}: {exc}")

        def _refuse(self) -> None:
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, dumps({"error": "this server is read-only"}),
                       "application/json; charset=utf-8", {"Allow": "GET, HEAD"})

        do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815

        def _page(self, query: dict[str, list[str]]) -> None:
            extra = {}
            if server.token is not None:
                extra["Set-Cookie"] = f"{_COOKIE}={server.token}; HttpOnly; SameSite=Strict; Path=/"
            self._send(HTTPStatus.OK, static_bytes("index.html"), "text/html; charset=utf-8", extra)

        def _static(self, name: str) -> None:
            ctype = STATIC_FILES.get(name)
            if ctype is None:
                self._error(HTTPStatus.NOT_FOUND, f"no such file: {name[:80]}")
                return
            self._send(HTTPStatus.OK, static_bytes(name), f"{ctype}; charset=utf-8")

        def _live(self, explorer: Explorer) -> None:
            """Server-sent events: ``head`` whenever the index grows, until the page leaves."""
            ix = explorer.index
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if self.command == "HEAD":
                return
            self.close_connection = True
            sent = (-1, False, -1)
            while not server.closing:
                with ix.changed:
                    last = sent
                    ix.changed.wait_for(lambda: (ix.head, ix.scanned, ix.attributed) != last or server.closing,  # noqa: B023 - runs in this iteration
                                        timeout=_HEARTBEAT)
                    now = (ix.head, ix.scanned, ix.attributed)
                    error = str(ix.error) if ix.error is not None else None
                if server.closing:
                    return
                if now == sent:
                    self.wfile.write(b": still here\n\n")
                else:
                    payload = json.dumps({"head": explorer.head, "indexed": now[0], "scanned": now[1], "attributed": now[2],
                                          "error": error})
                    self.wfile.write(f"event: head\ndata: {payload}\n\n".encode())
                    sent = now
                self.wfile.flush()
                # Coalesce bursts: a running job appends thousands of events a second.
                server._closing.wait(0.2)

    return Handler
