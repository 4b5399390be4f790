"""Client configuration: a frozen :class:`APIConfig`, read from the environment by from_env()."""

from __future__ import annotations

import dataclasses
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from typing_extensions import TypedDict, Unpack

from ._constants import API_VERSION, DEFAULT_ENDPOINT, DEFAULT_HASH
from ._dialects import AUTO, FAMILIES, supported_versions
from ._version import __version__
from .auth import supported_hashes
from .exceptions import ConfigurationError

__all__ = [
    "APIConfig",
    "APIConfigOptions",
    "DEFAULT_USER_AGENT",
    "ENV_ACCESS_KEY",
    "ENV_ENDPOINT",
    "ENV_SECRET_KEY",
]

#: The variables the embedded gateway prints (the Sorna family's names).
ENV_ENDPOINT = "SORNA_ENDPOINT"
ENV_ACCESS_KEY = "SORNA_ACCESS_KEY"
ENV_SECRET_KEY = "SORNA_SECRET_KEY"  # noqa: S105 (a variable name, not a secret)
DEFAULT_USER_AGENT = f"sorna-sdk/{__version__} (Python/{platform.python_version()})"


def _lookup(env: Mapping[str, str], key: str) -> tuple[str, str] | None:
    """``(variable, value)`` of the first family prefix that sets ``key`` (BACKEND_, SORNA_)."""
    for family in FAMILIES:
        name = family.env_prefix + key
        value = env.get(name, "").strip()
        if value:
            return name, value
    return None


def _missing(env: Mapping[str, str], key: str) -> str:
    """Name the variable to set: the family already in use, or every family's name."""
    for family in FAMILIES:
        if any(env.get(family.env_prefix + other, "").strip() for other in _KEYS):
            return family.env_prefix + key
    return " or ".join(family.env_prefix + key for family in FAMILIES)


_KEYS = ("ENDPOINT", "ACCESS_KEY", "SECRET_KEY", "API_VERSION")


class APIConfigOptions(TypedDict, total=False):
    """The fields of :class:`APIConfig` as keywords of :meth:`APIConfig.from_env` and
    :meth:`APIConfig.replace`: a misspelt name is a type error."""

    access_key: str
    """See :attr:`APIConfig.access_key`."""
    secret_key: str
    """See :attr:`APIConfig.secret_key`."""
    endpoint: str
    """See :attr:`APIConfig.endpoint`."""
    version: str
    """See :attr:`APIConfig.version`."""
    hash_name: str
    """See :attr:`APIConfig.hash_name`."""
    user_agent: str
    """See :attr:`APIConfig.user_agent`."""
    timeout: float | None
    """See :attr:`APIConfig.timeout`."""
    connect_timeout: float
    """See :attr:`APIConfig.connect_timeout`."""
    max_retries: int
    """See :attr:`APIConfig.max_retries`."""
    max_retry_wait: float
    """See :attr:`APIConfig.max_retry_wait`."""
    domain: str | None
    """See :attr:`APIConfig.domain`."""
    group: str | None
    """See :attr:`APIConfig.group`."""


@dataclass(frozen=True, init=False)
class APIConfig:
    """Where and how to reach a Sorna or Backend.AI API server.

    ``version`` picks the wire dialect: ``"v2.20170315"`` (Sorna, the embedded gateway),
    a Backend.AI version from ``"v4.20181215"`` to ``"v9.20250722"``, or ``"auto"`` to ask
    a Backend.AI server (``GET /``) and use ``min(server, newest supported)``.
    The secret key is kept out of ``repr()`` and ``str()``. Build one directly,
    or with :meth:`from_env`; derive variants with :meth:`replace`.
    """

    access_key: str
    """The access key (``SORNA_ACCESS_KEY`` / ``BACKEND_ACCESS_KEY``)."""
    secret_key: str = field(repr=False)
    """The secret key that signs requests; kept out of ``repr()`` and ``str()``."""
    endpoint: str = DEFAULT_ENDPOINT
    """The server's base URL (``http://`` or ``https://``; a trailing ``/`` is dropped)."""
    version: str = API_VERSION
    """The API version: ``"v2.20170315"`` (Sorna), a Backend.AI version, or ``"auto"``."""
    hash_name: str = DEFAULT_HASH
    """The HMAC hash of request signatures (``sha256``...)."""
    user_agent: str = DEFAULT_USER_AGENT
    """The ``User-Agent`` header of every request."""
    timeout: float | None = 60.0
    """Seconds to wait for a response (``None``: no limit). Query-mode executes return
    within the server's flush window, so this can stay moderate."""
    connect_timeout: float = 10.0
    """Seconds to wait for a TCP/TLS connection."""
    max_retries: int = 2
    """Extra attempts for requests that are safe to repeat."""
    max_retry_wait: float = 30.0
    """Upper bound, in seconds, of one wait before retrying (429 included)."""
    domain: str | None = None
    """Backend.AI domain of new sessions (``None``: ``"default"``)."""
    group: str | None = None
    """Backend.AI project (group) of new sessions (``None``: ``"default"``)."""

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        endpoint: str = DEFAULT_ENDPOINT,
        version: str = API_VERSION,
        hash_name: str = DEFAULT_HASH,
        user_agent: str = DEFAULT_USER_AGENT,
        timeout: float | None = 60.0,
        connect_timeout: float = 10.0,
        max_retries: int = 2,
        max_retry_wait: float = 30.0,
        domain: str | None = None,
        group: str | None = None,
    ) -> None:
        # Written out (the dataclass's own __init__ is off) so that editors show
        # ``secret_key: str`` as required rather than ``secret_key: str = field(repr=False)``.
        for name, value in (
            ("access_key", access_key),
            ("secret_key", secret_key),
            ("endpoint", endpoint),
            ("version", version),
            ("hash_name", hash_name),
            ("user_agent", user_agent),
            ("timeout", timeout),
            ("connect_timeout", connect_timeout),
            ("max_retries", max_retries),
            ("max_retry_wait", max_retry_wait),
            ("domain", domain),
            ("group", group),
        ):
            object.__setattr__(self, name, value)
        self.__post_init__()

    def __post_init__(self) -> None:
        if not self.access_key:
            raise ConfigurationError("access_key must not be empty")
        if not self.secret_key:
            raise ConfigurationError("secret_key must not be empty")
        parts = urlsplit(self.endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                f"endpoint must be an http:// or https:// URL with a host, got {self.endpoint!r}"
            )
        if parts.query or parts.fragment:
            raise ConfigurationError("endpoint must not carry a query string or fragment")
        object.__setattr__(self, "endpoint", self.endpoint.rstrip("/"))
        if self.hash_name not in supported_hashes():
            raise ConfigurationError(
                f"hash_name {self.hash_name!r} is not supported; "
                f"use one of {', '.join(sorted(supported_hashes()))}"
            )
        if self.version != AUTO and self.version not in supported_versions():
            raise ConfigurationError(
                f"version {self.version!r} is not supported; use 'auto' or one of "
                + ", ".join(supported_versions())
            )
        if self.max_retries < 0:
            raise ConfigurationError("max_retries must be 0 or more")

    def __str__(self) -> str:
        return repr(self)

    @property
    def major_version(self) -> str:
        """The major part of the configured version, e.g. ``v2`` (``auto`` when negotiated)."""
        return self.version.split(".", 1)[0]

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Unpack[APIConfigOptions]
    ) -> APIConfig:
        """Read the configuration from ``BACKEND_*`` variables, falling back to ``SORNA_*``.

        ``ACCESS_KEY`` and ``SECRET_KEY`` are required; ``ENDPOINT``, ``API_VERSION``,
        ``DOMAIN`` and ``GROUP`` are optional. When the endpoint comes from
        ``BACKEND_ENDPOINT`` and no version is set, the version is ``"auto"``; otherwise
        it defaults to ``v2.20170315``. Raises :class:`~sorna_sdk.ConfigurationError`
        naming the variable that is missing or wrong. Keyword arguments override what
        the environment says.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, key in (("access_key", "ACCESS_KEY"), ("secret_key", "SECRET_KEY")):
            if name in overrides:
                continue
            found = _lookup(env, key)
            if found is None:
                raise ConfigurationError(
                    f"the environment variable {_missing(env, key)} is not set; "
                    "export it or pass the key to APIConfig() directly"
                )
            values[name] = found[1]
        endpoint = _lookup(env, "ENDPOINT")
        if endpoint is not None:
            values["endpoint"] = endpoint[1]
        version = _lookup(env, "API_VERSION")
        if version is not None:
            values["version"] = version[1]
        elif endpoint is not None:
            family = next(f for f in FAMILIES if endpoint[0] == f.env_prefix + "ENDPOINT")
            values["version"] = family.env_default_version
        for name, key in (("domain", "DOMAIN"), ("group", "GROUP")):
            found = _lookup(env, key)
            if found is not None:
                values[name] = found[1]
        values.update(overrides)
        try:
            return cls(**values)
        except ConfigurationError as exc:
            if version is not None and "version" not in overrides and "version" in str(exc):
                raise ConfigurationError(f"{version[0]}: {exc}") from None
            raise

    def replace(self, **changes: Unpack[APIConfigOptions]) -> APIConfig:
        """Return a copy with some fields changed (validated like the constructor)."""
        return dataclasses.replace(self, **changes)
