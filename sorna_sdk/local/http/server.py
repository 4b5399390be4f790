"""The gateway's HTTP front: the aiohttp routes of spec §5, the checks of §3.3, RFC 7807 errors.

This and ``pty_stream.py`` (the PTY WebSocket bridge) are the gateway's only aiohttp modules.
Kernels come from a registry (see ``registry.py``); every failure leaves as
``application/problem+json``.

Connections (:class:`ConnectionGuard`): aiohttp closes idle keep-alive connections
(``keepalive_timeout``) but has no deadline for reading a request's head or body, nor a cap
on connections. The guard wraps each protocol that aiohttp's ``web.Server`` factory makes
(composition: every ``asyncio.Protocol`` callback is passed on unchanged) and learns from a
middleware when a request's head has been parsed and dispatched. No private aiohttp
attribute is touched:

* head deadline: a new connection, or the first byte of a further request on a kept-alive
  one, starts a ``header_timeout`` clock; the request reaching the application stops it.
  On expiry the connection gets a 408 (if it had sent anything) and is closed;
* body deadline: a request whose body is still incomplete when it reaches the application
  must be complete ``body_timeout`` seconds later, else the connection is closed;
* cap: connections beyond ``max_connections`` get a 503 and are closed at once.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final, Protocol, cast

from aiohttp import BodyPartReader, StreamReader, web

from ..._constants import API_VERSION, EMPTY_BODY_CONTENT_TYPE, MAX_CLOCK_SKEW_SECONDS, PROBLEM_BASE
from ...auth import (
    AuthorizationHeader,
    InvalidAuthorization,
    parse_authorization,
    parse_date,
    verify,
)
from ..runtime.errors import GatewayProblem, KernelNotFound
from ..runtime.terminal import CLOSE_SHUTDOWN, Subscription, Terminal, TerminalClosed
from .pty_bridge import MAX_FRAME, bridge
from .ratelimit import RateLimiter, RateState, Throttle

__all__ = [
    "ACCEPTED_HASHES",
    "SERVER_NAME",
    "ConnectionGuard",
    "ConnectionLimits",
    "KernelHandle",
    "Kernels",
    "ServerLimits",
    "create_app",
]

log = logging.getLogger(__name__)

SERVER_NAME = f"BackendAI-API/{API_VERSION}"
_PREFIXES = ("/v2", "/v1")  # the 2017 server answered the legacy /v1 prefix with the same routes
_MAJOR_VERSIONS = frozenset(prefix.lstrip("/") for prefix in _PREFIXES)
#: Largest accepted limits value: beyond it floats lose integer precision.
_MAX_NUMBER = 2**53
_AUTH_TITLE = "Missing or invalid authorization parameters."
_PARAMS_TITLE = "Missing or invalid API parameters."
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_ABSOLUTE_FILENAME = re.compile(r'filename="?[/\\]')
_FORM_ESCAPE = re.compile(r"%(0[0-9A-Fa-f]|1[0-9A-Fa-f]|22)")
#: The signing hashes the server accepts (``signMethod=HMAC-SHA256`` etc.); others get a 400.
ACCEPTED_HASHES: Final = frozenset({"sha256", "sha384", "sha512"})


@dataclass(frozen=True)
class _Caller:
    """The authenticated caller of the request being handled."""

    owner: str
    body: bytes
    rate: RateState


# Set by the middleware around each handler: the same task runs both, and
# aiohttp < 3.14 has no typed request storage.
_caller: ContextVar[_Caller | None] = ContextVar("sorna_local_caller", default=None)


class KernelHandle(Protocol):
    """What the server needs of one kernel (``LocalKernel``)."""

    kernel_id: str

    async def execute(
        self, mode: str, code: str, options: dict[str, Any] | None
    ) -> dict[str, Any]: ...
    async def restart(self) -> None: ...
    async def interrupt(self) -> None: ...
    def info(self) -> dict[str, Any]: ...
    async def upload(self, files: list[tuple[str, bytes]]) -> None: ...
    def touch(self) -> None: ...
    def terminal(self) -> Terminal: ...


class Kernels(Protocol):
    """What the server needs of the kernel registry (``KernelRegistry``)."""

    async def get_or_create(
        self,
        owner: str,
        token: str,
        lang: str,
        *,
        max_mem_kib: int = 0,
        exec_timeout: float = 0,
        max_kernels: int | None = None,
    ) -> tuple[KernelHandle, bool]: ...
    def get(self, owner: str, kernel_id: str) -> KernelHandle: ...
    async def destroy(self, owner: str, kernel_id: str) -> None: ...
    def count(self, owner: str) -> int: ...


@dataclass(frozen=True)
class ServerLimits:
    """Per-keypair limits and request size caps."""

    rate_limit: int = 1_000_000
    concurrency_limit: int = 64
    max_request_bytes: int = 8 * 1024 * 1024
    max_upload_files: int = 20
    max_upload_bytes: int = 1024 * 1024


class Problem(Exception):
    """A client-visible error raised by the HTTP layer itself."""

    def __init__(
        self, status: int, problem: str, title: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(title)
        self.status = status
        self.problem = problem
        self.title = title
        self.headers = dict(headers or {})


def _auth_problem(detail: str) -> Problem:
    return Problem(400, "invalid-auth-params", f"{_AUTH_TITLE} ({detail})")


def _params_problem(detail: str) -> Problem:
    return Problem(400, "invalid-api-params", f"{_PARAMS_TITLE} ({detail})")


class _NoContent(web.Response):
    """A 204 that still says ``Content-Length: 0``, as the 2017 clients expect (spec §3.2)."""

    def __init__(self) -> None:
        super().__init__(status=204, content_type=EMPTY_BODY_CONTENT_TYPE)

    async def _write_headers(self) -> None:
        # aiohttp drops Content-Length from every 204 while preparing; put it back last.
        self.headers["Content-Length"] = "0"
        await super()._write_headers()


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(payload).encode(),
        status=status,
        content_type="application/json",
        charset="utf-8",
    )


def _problem_response(status: int, problem: str, title: str) -> web.Response:
    body = json.dumps({"type": PROBLEM_BASE + problem, "title": title}).encode()
    return web.Response(
        body=body, status=status, content_type="application/problem+json", charset="utf-8"
    )


class _Gateway:
    """Request checks and route handlers, bound to one registry and one set of keys."""

    def __init__(self, kernels: Kernels, keys: Mapping[str, str], limits: ServerLimits) -> None:
        self.kernels = kernels
        self.keys = dict(keys)
        self.limits = limits
        self.rates = RateLimiter(limits.rate_limit)
        self.pty_streams: set[Subscription] = set()

    # -- middleware -----------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        rate: RateState | None = None
        try:
            caller: _Caller | None = None
            if _is_hello(request.path):
                # Public and anonymous: no Date needed (health checks, curl); rate figures for
                # a known access key only.
                rate = self._peek_rate(request)
            else:
                date = _checked_date(request)
                caller = await self._authenticate(request, date)
                rate = caller.rate
                if not rate.allowed:
                    raise Problem(
                        429, "rate-limit-exceeded", "You have reached your API query rate limit."
                    )
                _check_version_prefix(request.path)
            _check_route(request)
            token = _caller.set(caller)
            try:
                response = await handler(request)
            finally:
                _caller.reset(token)
        except Problem as exc:
            response = _problem_response(exc.status, exc.problem, exc.title)
            response.headers.update(exc.headers)
        except GatewayProblem as exc:
            response = _problem_response(exc.status, exc.problem, exc.title)
        except web.HTTPException as exc:
            response = _http_exception_response(exc)
        except ConnectionError:
            if _client_gone(request):
                # E.g. closed for a missed body deadline: nobody will read this answer, and
                # aiohttp drops an answer it cannot write without a word.
                response = _problem_response(
                    400, "generic-bad-request", "Bad request. (The connection was lost.)"
                )
            else:
                log.exception("unexpected error serving %s %s", request.method, request.path)
                response = _problem_response(500, "internal-server-error", "Internal server error.")
        except Exception:
            # Last resort: every known bad input is answered above with a 4xx.
            log.exception("unexpected error serving %s %s", request.method, request.path)
            response = _problem_response(500, "internal-server-error", "Internal server error.")
        if rate is not None and not response.prepared:
            response.headers.update(rate.headers())
        return response

    async def _authenticate(self, request: web.Request, date: str) -> _Caller:
        raw = request.headers.get("Authorization")
        if raw is None:
            raise _auth_problem("Missing authorization header")
        header = _parse_authorization(raw)
        version_header, version = _version_header(request)
        secret = self.keys.get(header.access_key)
        if secret is None:
            raise Problem(
                401, "auth-failed", "Credential/signature mismatch. (Access key not found)"
            )
        content_type = request.headers.get("Content-Type") or EMPTY_BODY_CONTENT_TYPE
        body = b"" if _is_multipart(content_type) else await self._read_body(request)
        try:
            ok = verify(
                header,
                secret_key=secret,
                method=request.method,
                path=request.raw_path,
                date=date,
                host=request.headers.get("Host", ""),
                content_type=content_type,
                body=body,
                version=version,
                version_header=version_header,
            )
        except (ValueError, UnicodeError, OverflowError):
            ok = False  # e.g. header bytes that are not UTF-8: they cannot have been signed
        if not ok:
            raise Problem(401, "auth-failed", "Credential/signature mismatch.")
        return _Caller(header.access_key, body, self.rates.hit(header.access_key))

    async def _read_body(self, request: web.Request) -> bytes:
        if (request.content_length or 0) > self.limits.max_request_bytes:
            raise Problem(413, "generic-bad-request", "Bad request. (Request body too large.)")
        return await request.read()

    def _peek_rate(self, request: web.Request) -> RateState | None:
        try:
            header = parse_authorization(request.headers.get("Authorization", ""))
        except InvalidAuthorization:
            return None
        if header.access_key not in self.keys:
            return None
        return self.rates.peek(header.access_key)

    # -- routes ---------------------------------------------------------------------

    async def hello(self, request: web.Request) -> web.StreamResponse:
        return _json({"version": API_VERSION})

    async def authorize(self, request: web.Request) -> web.StreamResponse:
        body = _current().body
        echo: Any = None
        if body.strip():
            try:
                data = _loads(body)
            except ValueError:
                raise _auth_problem("Malformed body") from None
            if not isinstance(data, dict):
                raise _auth_problem("Malformed body")
            echo = data.get("echo")
        return _json({"authorized": "yes", "echo": echo})

    async def create(self, request: web.Request) -> web.StreamResponse:
        data = _json_object()
        lang = _text(data, "lang")
        token = _text(data, "clientSessionToken")
        if not 8 <= len(token) <= 80:
            raise _params_problem("clientSessionToken must be 8 to 80 characters long")
        limits = _optional(data, "limits", dict, "an object") or {}
        max_mem = _number(limits, "maxMem", "limits.maxMem", integer=True)
        exec_timeout = _number(limits, "execTimeout", "limits.execTimeout", integer=False)
        _optional(data, "mounts", list, "a list")
        owner = _current().owner
        kernel, created = await self.kernels.get_or_create(
            owner,
            token,
            lang,
            max_mem_kib=int(max_mem),
            exec_timeout=float(exec_timeout),
            max_kernels=self.limits.concurrency_limit,
        )
        return _json({"kernelId": kernel.kernel_id, "created": created}, status=201)

    async def info(self, request: web.Request) -> web.StreamResponse:
        return _json(self._kernel(request).info())

    async def restart(self, request: web.Request) -> web.StreamResponse:
        await self._kernel(request).restart()
        return _NoContent()

    async def interrupt(self, request: web.Request) -> web.StreamResponse:
        # Awaited only if awaitable: a kernel whose interrupt() is still synchronous works too.
        result: Any = self._kernel(request).interrupt()
        if inspect.isawaitable(result):
            await result
        return _NoContent()

    async def destroy(self, request: web.Request) -> web.StreamResponse:
        await self.kernels.destroy(_current().owner, request.match_info["kernel_id"])
        return _NoContent()

    async def execute(self, request: web.Request) -> web.StreamResponse:
        kernel = self._kernel(request)
        data = _json_object()
        mode = _text(data, "mode")
        code = _optional(data, "code", str, "a string") or ""
        options = _optional(data, "options", dict, "an object or null")
        result = await kernel.execute(mode, code, options)
        return _json({"result": result})

    async def upload(self, request: web.Request) -> web.StreamResponse:
        kernel = self._kernel(request)
        if not _is_multipart(request.headers.get("Content-Type", "")):
            raise _params_problem("an upload must be multipart/form-data")
        files = await _read_uploads(request, self.limits)
        await kernel.upload(files)
        return _NoContent()

    async def pty(self, request: web.Request) -> web.StreamResponse:
        # Everything that can refuse (auth in the middleware, 404, no upgrade) comes before
        # prepare(): after the 101 only close codes can tell the client what went wrong.
        kernel = self._kernel(request)
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_FRAME)
        if not ws.can_prepare(request).ok:
            raise Problem(400, "generic-bad-request", "Bad request. (WebSocket upgrade expected.)")
        terminal = kernel.terminal()
        try:
            sub = await terminal.subscribe()
        except TerminalClosed:
            raise KernelNotFound(f"kernel {kernel.kernel_id} was destroyed") from None
        except OSError:
            log.exception("the terminal of kernel %s could not start", kernel.kernel_id)
            raise Problem(503, "service-unavailable", "The terminal could not start.") from None
        self.pty_streams.add(sub)
        try:
            await ws.prepare(request)
            watchdog = asyncio.get_running_loop().create_task(_abort_when_ended(request, sub))
            try:
                await bridge(ws, kernel, terminal, sub)
            finally:
                watchdog.cancel()
        finally:
            self.pty_streams.discard(sub)
            sub.close()
        return ws

    async def on_shutdown(self, app: web.Application) -> None:
        """Close the open PTY streams first: the server waits for its handlers to end."""
        for sub in list(self.pty_streams):
            sub.close(CLOSE_SHUTDOWN, "gateway shutting down")

    async def not_implemented(self, request: web.Request) -> web.StreamResponse:
        raise Problem(503, "not-implemented", "This API query is not implemented.")

    def _kernel(self, request: web.Request) -> KernelHandle:
        return self.kernels.get(_current().owner, request.match_info["kernel_id"])


#: How often a PTY stream checks whether its subscription has ended, and how long the bridge
#: then gets to close the WebSocket itself before the connection is aborted.
_PTY_POLL: Final = 0.25
_PTY_END_GRACE: Final = 3.0


async def _abort_when_ended(request: web.Request, sub: Subscription) -> None:
    """Abort the connection of a subscription the terminal ended, if it is still open later.

    The bridge closes the WebSocket with the subscription's code (1013 for a subscriber
    dropped for not reading, 4404, 1001). A peer that does not read never gets that close
    frame: it waits behind unread output while the bridge's send waits for room. Without
    this, such a connection stayed open as long as the peer kept pinging.
    """
    while sub.close_code is None:  # noqa: ASYNC110 (Subscription has no "ended" event to wait on)
        await asyncio.sleep(_PTY_POLL)
    await asyncio.sleep(_PTY_END_GRACE)
    transport = request.transport
    if transport is not None:
        # Even when already closing: close() waits to flush the unread output, which never is.
        log.debug("aborting a PTY stream still open %.0f s after it ended", _PTY_END_GRACE)
        transport.abort()


def _current() -> _Caller:
    caller = _caller.get()
    if caller is None:
        raise RuntimeError("no authenticated caller: a signed route was served without auth")
    return caller


# -- request checks -------------------------------------------------------------------


def _checked_date(request: web.Request) -> str:
    for name in ("Date", "X-Sorna-Date", "X-BackendAI-Date"):
        value = request.headers.get(name)
        if value:
            break
    else:
        raise _auth_problem("Date/time sync error")
    try:
        moment = parse_date(value)
        skew = abs((datetime.now(timezone.utc) - moment).total_seconds())
    except (ValueError, OverflowError):
        raise _auth_problem("Date/time sync error") from None
    if skew > MAX_CLOCK_SKEW_SECONDS:
        raise _auth_problem("Date/time sync error")
    return value


def _parse_authorization(raw: str) -> AuthorizationHeader:
    scheme, sep, _ = raw.strip().partition(" ")
    if not sep:
        raise _auth_problem("Malformed authorization header")
    if scheme not in ("Sorna", "BackendAI"):
        raise _auth_problem("Invalid authorization type name")
    try:
        header = parse_authorization(raw)
    except InvalidAuthorization as exc:
        if "signMethod" in str(exc):
            raise _auth_problem("Unsupported request signing method (hash type)") from None
        raise _auth_problem("Missing or malformed authorization parameters") from None
    if header.hash_name not in ACCEPTED_HASHES:  # MD5, SHA-1 and friends: not for signing
        raise _auth_problem("Unsupported request signing method (hash type)")
    return header


def _version_header(request: web.Request) -> tuple[str, str]:
    for name in ("X-Sorna-Version", "X-BackendAI-Version"):
        value = request.headers.get(name)
        if value:
            # "v2.20170315", or just "v2"; v1 too, as /v1 serves the same routes.
            if value.split(".", 1)[0] not in _MAJOR_VERSIONS:
                raise _auth_problem("Unsupported API version")
            return name.lower(), value
    raise _auth_problem("API version missing in request headers")


def _is_hello(path: str) -> bool:
    return path.rstrip("/") in _PREFIXES


def _check_version_prefix(path: str) -> None:
    if not any(path.startswith(prefix + "/") for prefix in _PREFIXES):
        raise Problem(400, "generic-bad-request", "Bad request. (Unsupported API version.)")


def _check_route(request: web.Request) -> None:
    failure = request.match_info.http_exception
    if isinstance(failure, web.HTTPMethodNotAllowed):
        allow = ", ".join(sorted(failure.allowed_methods))
        raise Problem(
            405, "generic-bad-request", "Bad request. (Method not allowed.)", {"Allow": allow}
        )
    if failure is not None:
        raise Problem(404, "generic-not-found", "Unknown URL path.")


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _is_multipart(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "multipart/form-data"


def _http_exception_response(exc: web.HTTPException) -> web.Response:
    status = exc.status if exc.status >= 400 else 400
    if status == 404:
        return _problem_response(404, "generic-not-found", "Unknown URL path.")
    if status >= 500:
        return _problem_response(status, "internal-server-error", "Internal server error.")
    return _problem_response(status, "generic-bad-request", f"Bad request. ({exc.reason})")


# -- JSON parameters ------------------------------------------------------------------


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _json_object() -> dict[str, Any]:
    try:
        data = _loads(_current().body)
    except ValueError:
        raise _params_problem("the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise _params_problem("the body must be a JSON object")
    return data


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise _params_problem(f"{name} must be a non-empty string")
    return value


def _optional(data: dict[str, Any], name: str, kind: type[Any], what: str) -> Any:
    value = data.get(name)
    if value is not None and not isinstance(value, kind):
        raise _params_problem(f"{name} must be {what}")
    return value


def _number(data: dict[str, Any], name: str, label: str, *, integer: bool) -> float:
    value = data.get(name, 0)
    if value is None:
        return 0
    kinds: tuple[type[Any], ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise _params_problem(f"{label} must be {'an integer' if integer else 'a number'}")
    if value < 0:
        raise _params_problem(f"{label} must be 0 or more")
    try:
        # math.isfinite() of an int beyond the float range raises OverflowError.
        sane = value <= _MAX_NUMBER and math.isfinite(value)
    except OverflowError:
        sane = False
    if not sane:
        raise _params_problem(f"{label} must be a finite number up to {_MAX_NUMBER}")
    return float(value)


# -- uploads --------------------------------------------------------------------------


async def _read_uploads(request: web.Request, limits: ServerLimits) -> list[tuple[str, bytes]]:
    files: list[tuple[str, bytes]] = []
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise _params_problem("nested multipart bodies are not supported")
            if part.name != "src" or not part.filename:
                raise _params_problem("each file must be a field named src with a filename")
            if len(files) >= limits.max_upload_files:
                raise _params_problem(f"at most {limits.max_upload_files} files per upload")
            files.append((_upload_name(part), await _read_part(part, limits.max_upload_bytes)))
    except (Problem, GatewayProblem):
        raise
    except ConnectionError:
        if _client_gone(request):
            raise
        raise _params_problem("malformed multipart body") from None
    except Exception:
        # aiohttp's multipart parser raises assorted errors on broken bodies.
        raise _params_problem("malformed multipart body") from None
    if not files:
        raise _params_problem("no file in the upload (field src)")
    return files


def _upload_name(part: BodyPartReader) -> str:
    name = part.filename or ""
    raw = part.headers.get("Content-Disposition", "")
    # aiohttp strips the leading slashes of a quoted filename: refuse, don't relocate.
    if _ABSOLUTE_FILENAME.search(raw):
        raise _params_problem(f"upload file name {'/' + name!r} must be relative")
    # Form encoders (WHATWG, httpx) percent-escape '"' and control characters in filenames.
    return _FORM_ESCAPE.sub(lambda m: chr(int(m[1], 16)), name)


async def _read_part(part: BodyPartReader, cap: int) -> bytes:
    data = bytearray()
    while chunk := await part.read_chunk():
        data += chunk
        if len(data) > cap:
            raise _params_problem(f"{part.filename} is larger than {cap} bytes")
    return bytes(data)


# -- connections ----------------------------------------------------------------------

#: Seconds a closed connection may take to flush its last bytes before it is aborted.
_ABORT_GRACE: Final = 2.0


@dataclass(frozen=True)
class ConnectionLimits:
    """Deadlines (seconds) and the connection cap of the HTTP server; see the module doc."""

    #: An idle kept-alive connection is closed after this long (passed to aiohttp).
    keepalive_timeout: float = 75.0
    #: A request's head (request line and headers) must arrive within this long.
    header_timeout: float = 20.0
    #: A request's body must be complete this long after its head was dispatched.
    body_timeout: float = 60.0
    #: Connections beyond this many are answered 503 and closed.
    max_connections: int = 1000

    def __post_init__(self) -> None:
        for name in ("keepalive_timeout", "header_timeout", "body_timeout"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {self.max_connections}")


def _raw_problem(status: int, reason: str, problem: str, title: str) -> bytes:
    """A complete ``Connection: close`` problem response, for when aiohttp has none to send."""
    body = json.dumps({"type": PROBLEM_BASE + problem, "title": title}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: application/problem+json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Server: {SERVER_NAME}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


_HEAD_TIMEOUT_RESPONSE: Final = _raw_problem(
    408,
    "Request Timeout",
    "generic-bad-request",
    "Bad request. (Request head not received in time.)",
)
_OVERLOADED_RESPONSE: Final = _raw_problem(
    503, "Service Unavailable", "service-unavailable", "Too many connections; try again later."
)


class ConnectionGuard:
    """Connection cap and head/body read deadlines around aiohttp's protocol factory.

    >>> guard = ConnectionGuard(ConnectionLimits())  # doctest: +SKIP
    >>> app = create_app(kernels, keys, guard=guard)
    >>> runner = web.AppRunner(app, keepalive_timeout=guard.limits.keepalive_timeout)
    >>> await runner.setup()
    >>> await loop.create_server(guard.protocol_factory(runner.server), host, port)
    """

    def __init__(self, limits: ConnectionLimits | None = None) -> None:
        self.limits = limits or ConnectionLimits()
        self._live: dict[asyncio.BaseTransport, _Connection] = {}
        #: Connections refused for being over the cap, and dropped for a missed deadline.
        self.refused = 0
        self.timed_out = 0
        self._refusal_log = Throttle(10.0)

    @property
    def connections(self) -> int:
        """Open connections (admitted, not yet lost)."""
        return len(self._live)

    def protocol_factory(self, make: Callable[[], asyncio.BaseProtocol]) -> Callable[[], Any]:
        """A factory for ``loop.create_server``: ``make`` (a ``web.Server``) wrapped."""
        return lambda: _Connection(self, make)

    @web.middleware
    async def middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        transport = request.transport
        conn = self._live.get(transport) if transport is not None else None
        if conn is None:
            return await handler(request)
        conn.request_started(request.content)
        try:
            return await handler(request)
        finally:
            conn.request_finished()

    def _admit(self, conn: _Connection, transport: asyncio.BaseTransport) -> bool:
        if len(self._live) >= self.limits.max_connections:
            self.refused += 1
            held = self._refusal_log.allow()
            if held is not None:
                more = f" ({held} more since the last report)" if held else ""
                log.warning(
                    "refusing connections: %d are open (max_connections)%s",
                    len(self._live),
                    more,
                )
            return False
        self._live[transport] = conn
        return True

    def _forget(self, transport: asyncio.BaseTransport | None) -> None:
        if transport is not None:
            self._live.pop(transport, None)


class _Connection(asyncio.Protocol):
    """One connection: aiohttp's protocol inside, the deadlines and the cap around it."""

    def __init__(self, guard: ConnectionGuard, make: Callable[[], asyncio.BaseProtocol]) -> None:
        self._guard = guard
        self._make = make
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self._in_request = False
        self._content: StreamReader | None = None  # the body of the latest dispatched request
        self._head_started = False  # bytes of a head not yet dispatched have arrived
        self._head_pending = False  # such bytes arrived while a request was being handled
        self._closing = False

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        if not self._guard._admit(self, transport):
            self._drop(_OVERLOADED_RESPONSE, "over max_connections")
            return
        inner = self._make()
        assert isinstance(inner, asyncio.Protocol)
        self._inner = inner
        inner.connection_made(transport)
        self._arm_head()  # the first request's head is due too, not only later ones

    def data_received(self, data: bytes) -> None:
        inner = self._inner
        if inner is None:
            return
        content = self._content
        # Bytes after the latest body (or before any request) belong to the next head. A chunk
        # that ends one body and starts the next head is seen at the following chunk.
        next_head = content is None or content.is_eof()
        inner.data_received(data)
        if not next_head or not data or self._closing:
            return
        if self._in_request:
            self._head_pending = True
        else:
            self._head_started = True
            if self._head_timer is None:
                self._arm_head()

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
        self._guard._forget(self._transport)
        inner, self._inner = self._inner, None
        self._content = None
        if inner is not None:
            inner.connection_lost(exc)

    # -- request lifecycle (from the middleware) ----------------------------------------

    def request_started(self, content: StreamReader) -> None:
        self._cancel_timers()
        self._in_request = True
        self._head_started = self._head_pending = False
        self._content = content
        if not content.is_eof():
            loop = asyncio.get_running_loop()
            timeout = self._guard.limits.body_timeout
            self._body_timer = loop.call_later(timeout, self._body_expired, content)

    def request_finished(self) -> None:
        self._in_request = False
        if self._head_pending and not self._closing:
            self._head_pending = False
            self._head_started = True
            self._arm_head()

    # -- deadlines ----------------------------------------------------------------------

    def _arm_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        loop = asyncio.get_running_loop()
        self._head_timer = loop.call_later(self._guard.limits.header_timeout, self._head_expired)

    def _head_expired(self) -> None:
        self._head_timer = None
        if self._in_request or self._closing:
            return
        self._guard.timed_out += 1
        started = self._head_started
        self._drop(_HEAD_TIMEOUT_RESPONSE if started else None, "request head not received in time")

    def _body_expired(self, content: StreamReader) -> None:
        self._body_timer = None
        if content is self._content and not content.is_eof():
            self._guard.timed_out += 1
            self._drop(None, "request body not received in time")

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    def _drop(self, response: bytes | None, why: str) -> None:
        transport = self._transport
        if self._closing or transport is None or transport.is_closing():
            return
        self._closing = True
        self._cancel_timers()
        log.debug("closing a connection from %s: %s", transport.get_extra_info("peername"), why)
        # Only when nothing of an earlier response still waits to be sent: else the bytes
        # would land in the middle of it.
        if response is not None and transport.get_write_buffer_size() == 0:
            transport.write(response)
        transport.close()
        loop = asyncio.get_running_loop()
        self._abort_timer = loop.call_later(_ABORT_GRACE, transport.abort)  # a client not reading


# -- application ----------------------------------------------------------------------


async def _on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER_NAME
    caller = _caller.get()
    if caller is not None:  # prepared inside a handler (a stream): the middleware comes too late
        response.headers.update(caller.rate.headers())


def create_app(
    kernels: Kernels,
    keys: Mapping[str, str],
    limits: ServerLimits | None = None,
    *,
    guard: ConnectionGuard | None = None,
) -> web.Application:
    """The aiohttp application serving spec §5 for ``keys`` (access key -> secret key).

    With ``guard``, serve it through ``guard.protocol_factory(runner.server)`` for the
    connection deadlines and cap to apply.
    """
    gateway = _Gateway(kernels, keys, limits or ServerLimits())
    middlewares = [gateway.middleware] if guard is None else [guard.middleware, gateway.middleware]
    app = web.Application(
        middlewares=middlewares,
        client_max_size=gateway.limits.max_request_bytes,
    )
    app.on_response_prepare.append(_on_prepare)
    app.on_shutdown.append(gateway.on_shutdown)
    router = app.router
    for prefix in _PREFIXES:
        kernel = f"{prefix}/kernel/{{kernel_id}}"
        router.add_get(prefix, gateway.hello, allow_head=False)
        router.add_get(prefix + "/", gateway.hello, allow_head=False)
        router.add_get(f"{prefix}/authorize", gateway.authorize, allow_head=False)
        router.add_post(f"{prefix}/kernel/create", gateway.create)
        router.add_get(kernel, gateway.info, allow_head=False)
        router.add_patch(kernel, gateway.restart)
        router.add_delete(kernel, gateway.destroy)
        router.add_post(kernel, gateway.execute)
        router.add_post(f"{kernel}/upload", gateway.upload)
        router.add_post(f"{kernel}/interrupt", gateway.interrupt)
        router.add_get(f"{prefix}/stream/kernel/{{kernel_id}}/pty", gateway.pty, allow_head=False)
        router.add_route("*", f"{prefix}/folder", gateway.not_implemented)
        router.add_route("*", f"{prefix}/folder/{{name}}", gateway.not_implemented)
    return app
