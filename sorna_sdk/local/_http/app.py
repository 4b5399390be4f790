"""The aiohttp application: both dialects on one port, one middleware in front of them.

Every answer leaves as JSON or ``application/problem+json`` in the request's dialect, with
the dialect's rate-limit headers; no input gives a 500 (the last-resort handler logs).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from .._runtime.errors import GatewayProblem
from .auth import Authenticator, Caller, current_or_none, reset_caller, set_caller, version_of
from .backendai import BackendAIRoutes
from .connections import SERVER_NAME, ConnectionGuard
from .execute_ws import RESUME_GRACE, ExecuteStreams
from .problems import HttpProblem, problem_response
from .pty_bridge import PtyStreams
from .ratelimit import RateLimiter, RateState
from .runtime_api import Kernels
from .sorna_v2 import SornaRoutes
from .uploads import client_gone
from .wire import SORNA, SORNA_PREFIXES, WireDialect, dialect_of

__all__ = ["ServerLimits", "create_app"]

log: logging.Logger = logging.getLogger(__name__)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ServerLimits:
    """Per-keypair limits and request size caps."""

    rate_limit: int = 1_000_000
    concurrency_limit: int = 64
    max_request_bytes: int = 8 * 1024 * 1024
    max_upload_files: int = 20
    max_upload_bytes: int = 1024 * 1024
    #: Seconds a run whose execute stream was left waits to be resumed before its interrupt.
    resume_grace: float = RESUME_GRACE


class _Front:
    """Authentication, dialect choice and error rendering around every route."""

    def __init__(self, kernels: Kernels, keys: Mapping[str, str], limits: ServerLimits) -> None:
        self.limits = limits
        self.auth = Authenticator(keys, RateLimiter(limits.rate_limit), limits.max_request_bytes)
        self.pty = PtyStreams()
        self.streams = ExecuteStreams(limits.resume_grace)
        self.sorna = SornaRoutes(
            kernels,
            concurrency_limit=limits.concurrency_limit,
            max_upload_files=limits.max_upload_files,
            max_upload_bytes=limits.max_upload_bytes,
            pty=self.pty,
            streams=self.streams,
        )
        self.backendai = BackendAIRoutes(
            kernels,
            concurrency_limit=limits.concurrency_limit,
            max_upload_files=limits.max_upload_files,
            max_upload_bytes=limits.max_upload_bytes,
            pty=self.pty,
            streams=self.streams,
        )

    @web.middleware
    async def middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        dialect = dialect_of(request.path, request.headers)
        rate: RateState | None = None
        try:
            caller: Caller | None = None
            if self._is_hello(request, dialect):
                # Public and anonymous: no Date needed (health checks, version negotiation);
                # rate figures for a known access key only.
                if dialect is not SORNA and _has_version(request):
                    version_of(request, dialect)  # an unsupported version is still a 400
                rate = self.auth.peek_rate(request)
            else:
                caller = await self.auth.authenticate(request, dialect)
                rate = caller.rate
                if not rate.allowed:
                    raise HttpProblem("rate-limit-exceeded")
                if dialect is SORNA and not _sorna_path(request.path):
                    raise HttpProblem("bad-request", "Unsupported API version.")
            _check_route(request)
            token = set_caller(caller)
            try:
                response = await handler(request)
            finally:
                reset_caller(token)
        except (HttpProblem, GatewayProblem) as exc:
            response = problem_response(dialect, exc)
        except web.HTTPException as exc:
            response = problem_response(dialect, _http_problem(exc))
        except ConnectionError:
            if client_gone(request):
                # E.g. closed for a missed body deadline: nobody will read this answer, and
                # aiohttp drops an answer it cannot write without a word.
                response = problem_response(
                    dialect, HttpProblem("bad-request", "The connection was lost.")
                )
            else:
                log.exception("unexpected error serving %s %s", request.method, request.path)
                response = problem_response(dialect, HttpProblem("internal-server-error"))
        except Exception:
            # Last resort: every known bad input is answered above with a 4xx.
            log.exception("unexpected error serving %s %s", request.method, request.path)
            response = problem_response(dialect, HttpProblem("internal-server-error"))
        if rate is not None and not response.prepared:
            response.headers.update(dialect.rate_headers(rate))
        return response

    def _is_hello(self, request: web.Request, dialect: WireDialect) -> bool:
        if dialect is SORNA:
            return self.sorna.is_hello(request.path)
        return self.backendai.is_hello(request.path)


def _has_version(request: web.Request) -> bool:
    return bool(
        request.headers.get("X-BackendAI-Version") or request.headers.get("X-Sorna-Version")
    )


def _sorna_path(path: str) -> bool:
    return any(path.startswith(prefix + "/") for prefix in SORNA_PREFIXES)


def _check_route(request: web.Request) -> None:
    failure = request.match_info.http_exception
    if isinstance(failure, web.HTTPMethodNotAllowed):
        allow = ", ".join(sorted(failure.allowed_methods))
        raise HttpProblem("method-not-allowed", headers={"Allow": allow})
    if failure is not None:
        raise HttpProblem("url-not-found")


def _http_problem(exc: web.HTTPException) -> HttpProblem:
    status = exc.status if exc.status >= 400 else 400
    if status == 404:
        return HttpProblem("url-not-found")
    if status >= 500:
        return HttpProblem("internal-server-error", status=status)
    return HttpProblem("bad-request", str(exc.reason), status=status)


async def _on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER_NAME
    caller = current_or_none()
    if caller is not None:  # prepared inside a handler (a stream): the middleware comes too late
        response.headers.update(caller.dialect.rate_headers(caller.rate))


def create_app(
    kernels: Kernels,
    keys: Mapping[str, str],
    limits: ServerLimits | None = None,
    *,
    guard: ConnectionGuard | None = None,
) -> web.Application:
    """The aiohttp application serving both dialects for ``keys`` (access key -> secret key).

    With ``guard``, serve it through ``guard.protocol_factory(runner.server)`` for the
    connection deadlines and cap to apply.
    """
    front = _Front(kernels, keys, limits or ServerLimits())
    middlewares = [front.middleware] if guard is None else [guard.middleware, front.middleware]
    app = web.Application(middlewares=middlewares, client_max_size=front.limits.max_request_bytes)
    app.on_response_prepare.append(_on_prepare)
    app.on_shutdown.append(front.pty.on_shutdown)
    app.on_shutdown.append(front.backendai.on_shutdown)
    app.on_shutdown.append(front.streams.on_shutdown)
    front.sorna.add_to(app.router)
    front.backendai.add_to(app.router)
    return app
