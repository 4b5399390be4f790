"""Request authentication for both dialects: the Date window, the Authorization header, the
version header, and the signature (``sorna_sdk.auth.verify``, as the client signs)."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Final

from aiohttp import web

from ..._constants import EMPTY_BODY_CONTENT_TYPE, MAX_CLOCK_SKEW_SECONDS
from ...auth import (
    AuthorizationHeader,
    InvalidAuthorization,
    parse_authorization,
    parse_date,
    verify,
)
from .problems import HttpProblem, auth_problem
from .ratelimit import RateLimiter, RateState
from .uploads import is_multipart
from .wire import WireDialect

__all__ = ["ACCEPTED_HASHES", "Authenticator", "Caller", "current", "current_or_none"]

#: The signing hashes the server accepts (``signMethod=HMAC-SHA256`` etc.); others get a 400.
ACCEPTED_HASHES: Final = frozenset({"sha256", "sha384", "sha512"})


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of the request being handled."""

    owner: str
    body: bytes
    rate: RateState
    dialect: WireDialect
    #: The API version the request said it speaks (``X-BackendAI-Version`` etc.).
    version: str


# Set by the middleware around each handler: the same task runs both.
_caller: ContextVar[Caller | None] = ContextVar("sorna_local_caller", default=None)


def current() -> Caller:
    """The caller of the signed request being handled."""
    caller = _caller.get()
    if caller is None:
        raise RuntimeError("no authenticated caller: a signed route was served without auth")
    return caller


def current_or_none() -> Caller | None:
    """The caller, or ``None`` on an anonymous route."""
    return _caller.get()


def set_caller(caller: Caller | None) -> object:
    """Make ``caller`` current (returns a token for :func:`reset_caller`)."""
    return _caller.set(caller)


def reset_caller(token: object) -> None:
    _caller.reset(token)  # type: ignore[arg-type]


class Authenticator:
    """Checks signed requests against the gateway's keypairs."""

    def __init__(self, keys: Mapping[str, str], rates: RateLimiter, max_body: int) -> None:
        self.keys: dict[str, str] = dict(keys)
        self.rates = rates
        self.max_body = max_body

    async def authenticate(self, request: web.Request, dialect: WireDialect) -> Caller:
        """The caller of a signed request (raises the problem a bad one deserves).

        Backend.AI answers a request without ``Authorization`` 401 before looking at its
        date; the 2017 server checked the date first.
        """
        raw = request.headers.get("Authorization")
        if raw is None and dialect.name == "backendai":
            raise HttpProblem("auth-failed", "Unauthorized access")
        date = checked_date(request)
        if raw is None:
            raise auth_problem("Missing authorization header")
        header = _parse_authorization(raw)
        version_header, version = version_of(request, dialect)
        secret = self.keys.get(header.access_key)
        if secret is None:
            raise HttpProblem("auth-failed", "Access key not found")
        content_type = request.headers.get("Content-Type") or EMPTY_BODY_CONTENT_TYPE
        body = b"" if is_multipart(content_type) else await self._read_body(request)
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
                hash_body=dialect.hash_body,
            )
        except (ValueError, UnicodeError, OverflowError):
            ok = False  # e.g. header bytes that are not UTF-8: they cannot have been signed
        if not ok:
            detail = "HMAC signature mismatch" if dialect.name == "backendai" else None
            raise HttpProblem("auth-failed", detail)
        return Caller(header.access_key, body, self.rates.hit(header.access_key), dialect, version)

    def peek_rate(self, request: web.Request) -> RateState | None:
        """Rate figures for an anonymous request that names a known access key."""
        try:
            header = parse_authorization(request.headers.get("Authorization", ""))
        except InvalidAuthorization:
            return None
        if header.access_key not in self.keys:
            return None
        return self.rates.peek(header.access_key)

    async def _read_body(self, request: web.Request) -> bytes:
        if (request.content_length or 0) > self.max_body:
            raise HttpProblem("request-too-large")
        return await request.read()


def checked_date(request: web.Request) -> str:
    """The request's Date (or X-*-Date), within the allowed clock skew."""
    for name in ("Date", "X-Sorna-Date", "X-BackendAI-Date"):
        value = request.headers.get(name)
        if value:
            break
    else:
        raise auth_problem("Date/time sync error")
    try:
        moment = parse_date(value)
        skew = abs((datetime.now(timezone.utc) - moment).total_seconds())
    except (ValueError, OverflowError):
        raise auth_problem("Date/time sync error") from None
    if skew > MAX_CLOCK_SKEW_SECONDS:
        raise auth_problem("Date/time sync error")
    return value


def version_of(request: web.Request, dialect: WireDialect) -> tuple[str, str]:
    """(header name lower-cased, value) of the version header, checked for ``dialect``."""
    for name in ("X-Sorna-Version", "X-BackendAI-Version"):
        value = request.headers.get(name)
        if value:
            if not dialect.accepts_version(value):
                if dialect.name == "backendai":
                    raise HttpProblem("bad-request", title="Unsupported API version.")
                raise auth_problem("Unsupported API version")
            return name.lower(), value
    raise auth_problem("API version missing in request headers")


def _parse_authorization(raw: str) -> AuthorizationHeader:
    scheme, sep, _ = raw.strip().partition(" ")
    if not sep:
        raise auth_problem("Malformed authorization header")
    if scheme not in ("Sorna", "BackendAI"):
        raise auth_problem("Invalid authorization type name")
    try:
        header = parse_authorization(raw)
    except InvalidAuthorization as exc:
        if "signMethod" in str(exc):
            raise auth_problem("Unsupported request signing method (hash type)") from None
        raise auth_problem("Missing or malformed authorization parameters") from None
    if header.hash_name not in ACCEPTED_HASHES:  # MD5, SHA-1 and friends: not for signing
        raise auth_problem("Unsupported request signing method (hash type)")
    return header
