"""Request signing (spec §3): pure ``sign()``/``verify()`` and an ``httpx.Auth`` adapter.

The same ``sign()`` is used by the HTTP client, the WebSocket handshake and the
local gateway's ``verify()``, so client and server cannot drift apart. What differs
between wire dialects (scheme name, version header, whether the body is hashed) is a
:class:`SigningPolicy`, owned by each dialect.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Final

import httpx

from ._constants import EMPTY_BODY_CONTENT_TYPE

__all__ = [
    "AuthorizationHeader",
    "HMACAuth",
    "InvalidAuthorization",
    "SORNA_SIGNING",
    "SigningPolicy",
    "body_hash",
    "format_date",
    "parse_authorization",
    "parse_date",
    "sign",
    "signature",
    "string_to_sign",
    "supported_hashes",
    "verify",
]

#: Hash names usable for HMAC: hashlib's guaranteed algorithms minus the
#: variable-length SHAKE family, which HMAC cannot use.
_SUPPORTED_HASHES = frozenset(
    name for name in hashlib.algorithms_guaranteed if not name.startswith("shake_")
)
_SCHEMES = ("Sorna", "BackendAI")


class InvalidAuthorization(ValueError):
    """An ``Authorization`` or ``Date`` header could not be parsed."""


@dataclass(frozen=True)
class SigningPolicy:
    """How a dialect signs: scheme name, version header, and whether the body is hashed."""

    scheme: str = "Sorna"
    """The ``Authorization`` scheme: ``Sorna`` (Sorna v2) or ``BackendAI``."""
    version_header: str = "X-Sorna-Version"
    """Header carrying the API version; its lower-cased name is a line of the signed string."""
    hash_body: bool = True
    """Hash the body bytes (Sorna v2); otherwise the hash of ``b""`` is signed (Backend.AI v4+)."""


#: The Sorna ``v2.20170315`` policy: ``Sorna`` scheme, ``X-Sorna-Version``, body hashed.
SORNA_SIGNING: Final = SigningPolicy()


def supported_hashes() -> frozenset[str]:
    """Hash names accepted for signing (``sha256``, ``sha1``, ``sha512``, ...)."""
    return _SUPPORTED_HASHES


def format_date(moment: datetime) -> str:
    """Format a timezone-aware datetime as the ISO 8601 ``Date`` header value."""
    if moment.tzinfo is None:
        raise ValueError("the Date of a signed request must be timezone-aware")
    return moment.isoformat()


def parse_date(value: str) -> datetime:
    """Parse an ISO 8601 or RFC 1123 ``Date`` header into an aware datetime."""
    text = _normalise_iso(value.strip())
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError) as exc:
            raise InvalidAuthorization(f"unparsable Date header: {value[:64]!r}") from exc
    if moment.tzinfo is None:
        raise InvalidAuthorization("the Date header has no UTC offset")
    return moment


def _signing_day(date: str) -> str:
    """``%Y%m%d`` of the Date header for key derivation; a date without offset is UTC, as
    Backend.AI servers take it (whether such a date is acceptable is the caller's check)."""
    try:
        return parse_date(date).strftime("%Y%m%d")
    except InvalidAuthorization:
        moment = datetime.fromisoformat(_normalise_iso(date.strip()))
        return moment.replace(tzinfo=timezone.utc).strftime("%Y%m%d")


_ISO_8601 = re.compile(
    r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2})(?:[.,](\d+))?(Z|[+-]\d{2}:?\d{2})?", re.IGNORECASE
)


def _normalise_iso(text: str) -> str:
    """Rewrite ISO 8601 variants into the form ``datetime.fromisoformat`` takes on every
    supported Python (3.10 rejects ``Z``, ``+0000`` and fractions that are not 3 or 6 digits)."""
    match = _ISO_8601.fullmatch(text)
    if match is None:
        return text
    base, fraction, offset = match.groups()
    fraction = f".{(fraction + '000000')[:6]}" if fraction else ""
    if offset is None:
        offset = ""
    elif offset.upper() == "Z":
        offset = "+00:00"
    elif ":" not in offset:
        offset = f"{offset[:3]}:{offset[3:]}"
    return base + fraction + offset


def body_hash(body: bytes, content_type: str, hash_name: str) -> str:
    """Hex digest of the body; multipart bodies are hashed as empty (spec §3 step 1)."""
    if _bare_content_type(content_type) == "multipart/form-data":
        body = b""
    return hashlib.new(hash_name, body).hexdigest()


def string_to_sign(
    *,
    method: str,
    path: str,
    date: str,
    host: str,
    content_type: str,
    body: bytes,
    version: str,
    hash_name: str,
    version_header: str = "x-sorna-version",
    hash_body: bool = True,
) -> str:
    """The newline-joined string that the signature covers (spec §3 step 2)."""
    return "\n".join(
        [
            method.upper(),
            path,
            date,
            f"host:{host}",
            f"content-type:{_bare_content_type(content_type)}",
            f"{version_header.lower()}:{version}",
            body_hash(body if hash_body else b"", content_type, hash_name),
        ]
    )


def signature(secret_key: str, *, date: str, host: str, text: str, hash_name: str) -> str:
    """Derive the signing key from the date and host, then sign ``text`` (spec §3 steps 3-4)."""
    _check_hash(hash_name)
    day = _signing_day(date)
    k1 = hmac.new(secret_key.encode(), day.encode(), hash_name).digest()
    k2 = hmac.new(k1, host.encode(), hash_name).digest()
    return hmac.new(k2, text.encode(), hash_name).hexdigest()


def sign(
    *,
    method: str,
    path: str,
    date: str,
    host: str,
    content_type: str,
    body: bytes,
    version: str,
    access_key: str,
    secret_key: str,
    hash_name: str = "sha256",
    scheme: str = "Sorna",
    version_header: str = "x-sorna-version",
    hash_body: bool = True,
) -> str:
    """Return the ``Authorization`` header value for one request."""
    digest = _request_digest(
        secret_key,
        method,
        path,
        date,
        host,
        content_type,
        body,
        version,
        hash_name,
        version_header,
        hash_body,
    )
    return f"{scheme} signMethod=HMAC-{hash_name.upper()}, credential={access_key}:{digest}"


def _request_digest(
    secret_key: str,
    method: str,
    path: str,
    date: str,
    host: str,
    content_type: str,
    body: bytes,
    version: str,
    hash_name: str,
    version_header: str,
    hash_body: bool,
) -> str:
    """The hex signature of one request: what ``sign`` sends and ``verify`` recomputes."""
    text = string_to_sign(
        method=method,
        path=path,
        date=date,
        host=host,
        content_type=content_type,
        body=body,
        version=version,
        hash_name=hash_name,
        version_header=version_header,
        hash_body=hash_body,
    )
    return signature(secret_key, date=date, host=host, text=text, hash_name=hash_name)


@dataclass(frozen=True)
class AuthorizationHeader:
    """The parts of a parsed ``Authorization`` header."""

    scheme: str
    """The scheme: ``Sorna`` or ``BackendAI``."""
    hash_name: str
    """The hash of ``signMethod=HMAC-...``, lower-cased: ``sha256``, ``sha1``..."""
    access_key: str
    """The access key of ``credential=AK:SIG``."""
    signature: str
    """The hex signature of ``credential=AK:SIG``."""


def parse_authorization(value: str) -> AuthorizationHeader:
    """Parse ``Sorna signMethod=HMAC-SHA256, credential=AK:SIG``; raise on anything else."""
    scheme, sep, params = value.strip().partition(" ")
    if not sep or scheme not in _SCHEMES:
        raise InvalidAuthorization("the Authorization header is not of the Sorna scheme")
    fields: dict[str, str] = {}
    for part in params.split(","):
        key, eq, val = part.strip().partition("=")
        if not eq:
            raise InvalidAuthorization("malformed Authorization parameters")
        fields[key.strip()] = val.strip()
    method = fields.get("signMethod", "")
    credential = fields.get("credential", "")
    if not method.upper().startswith("HMAC-"):
        raise InvalidAuthorization("unsupported signMethod")
    hash_name = method[len("HMAC-") :].lower()
    if hash_name not in _SUPPORTED_HASHES:
        raise InvalidAuthorization("unsupported signMethod")
    access_key, colon, sig = credential.partition(":")
    if not colon or not access_key or not sig:
        raise InvalidAuthorization("malformed credential")
    return AuthorizationHeader(scheme, hash_name, access_key, sig)


def verify(
    header: AuthorizationHeader,
    *,
    secret_key: str,
    method: str,
    path: str,
    date: str,
    host: str,
    content_type: str,
    body: bytes,
    version: str,
    version_header: str = "x-sorna-version",
    hash_body: bool = True,
) -> bool:
    """Recompute the signature and compare it in constant time."""
    expected = _request_digest(
        secret_key,
        method,
        path,
        date,
        host,
        content_type,
        body,
        version,
        header.hash_name,
        version_header,
        hash_body,
    )
    return hmac.compare_digest(expected.encode(), header.signature.encode())


class HMACAuth(httpx.Auth):
    """Signs every request (and every retry) with a fresh ``Date``.

    Serves ``httpx.Client`` and ``httpx.AsyncClient`` alike. ``policy`` is the
    dialect's :class:`SigningPolicy`; ``clock`` is injectable so tests can pin the date.
    """

    requires_request_body = True
    """Tells httpx to read a streamed body before :meth:`auth_flow`: the signature hashes it."""

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        *,
        version: str,
        hash_name: str = "sha256",
        policy: SigningPolicy = SORNA_SIGNING,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        _check_hash(hash_name)
        self._access_key = access_key
        self._secret_key = secret_key
        self._version = version
        self._hash_name = hash_name
        self._policy = policy
        self._clock = clock or _utc_now

    def __repr__(self) -> str:
        return f"HMACAuth(access_key={self._access_key!r}, hash_name={self._hash_name!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign_request(request)
        yield request

    def signed_headers(
        self, method: str, path: str, host: str, content_type: str, body: bytes
    ) -> dict[str, str]:
        """``Date``, the version header and ``Authorization`` for a request sent another way
        (a WebSocket handshake)."""
        date = format_date(self._clock())
        policy = self._policy
        return {
            "Date": date,
            policy.version_header: self._version,
            "Authorization": sign(
                method=method,
                path=path,
                date=date,
                host=host,
                content_type=content_type,
                body=body,
                version=self._version,
                access_key=self._access_key,
                secret_key=self._secret_key,
                hash_name=self._hash_name,
                scheme=policy.scheme,
                version_header=policy.version_header,
                hash_body=policy.hash_body,
            ),
        }

    def sign_request(self, request: httpx.Request) -> None:
        """Add ``Date``, the version header and ``Authorization`` to ``request`` in place."""
        content_type = request.headers.get("Content-Type") or EMPTY_BODY_CONTENT_TYPE
        request.headers.update(
            self.signed_headers(
                request.method,
                request.url.raw_path.decode("ascii"),
                request.headers["Host"],
                content_type,
                request.content,
            )
        )


def _bare_content_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _check_hash(hash_name: str) -> None:
    if hash_name not in _SUPPORTED_HASHES:
        raise ValueError(
            f"unsupported hash {hash_name!r}; use one of {', '.join(sorted(_SUPPORTED_HASHES))}"
        )


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)
