"""Client configuration: a frozen :class:`APIConfig`, read from the environment by from_env()."""

from __future__ import annotations

import dataclasses
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ._constants import API_VERSION, DEFAULT_ENDPOINT, DEFAULT_HASH
from ._version import __version__
from .auth import supported_hashes
from .exceptions import ConfigurationError

__all__ = ["APIConfig", "DEFAULT_USER_AGENT", "ENV_ACCESS_KEY", "ENV_ENDPOINT", "ENV_SECRET_KEY"]

ENV_ENDPOINT = "SORNA_ENDPOINT"
ENV_ACCESS_KEY = "SORNA_ACCESS_KEY"
ENV_SECRET_KEY = "SORNA_SECRET_KEY"  # noqa: S105 (a variable name, not a secret)
DEFAULT_USER_AGENT = f"sorna-sdk/{__version__} (Python/{platform.python_version()})"


@dataclass(frozen=True)
class APIConfig:
    """Where and how to reach a Sorna API server.

    The secret key is kept out of ``repr()`` and ``str()``. Build one directly,
    or with :meth:`from_env`; derive variants with :meth:`replace`.
    """

    access_key: str
    secret_key: str = field(repr=False)
    endpoint: str = DEFAULT_ENDPOINT
    version: str = API_VERSION
    hash_name: str = DEFAULT_HASH
    user_agent: str = DEFAULT_USER_AGENT
    #: Seconds to wait for a response (``None``: no limit). Query-mode executes
    #: return within the server's flush window, so this can stay moderate.
    timeout: float | None = 60.0
    #: Seconds to wait for a TCP/TLS connection.
    connect_timeout: float = 10.0
    #: Extra attempts for requests that are safe to repeat.
    max_retries: int = 2
    #: Upper bound, in seconds, of one wait before retrying (429 included).
    max_retry_wait: float = 30.0

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
        if not self.version.startswith("v") or "." not in self.version:
            raise ConfigurationError(f"version must look like 'v2.20170315', got {self.version!r}")
        if self.max_retries < 0:
            raise ConfigurationError("max_retries must be 0 or more")

    def __str__(self) -> str:
        return repr(self)

    @property
    def major_version(self) -> str:
        """The path prefix of every route, e.g. ``v2``."""
        return self.version.split(".", 1)[0]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> APIConfig:
        """Read ``SORNA_ACCESS_KEY``, ``SORNA_SECRET_KEY`` and ``SORNA_ENDPOINT``.

        Raises :class:`~sorna_sdk.ConfigurationError` naming the variable that is
        missing. Keyword arguments override what the environment says.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, env_var in (("access_key", ENV_ACCESS_KEY), ("secret_key", ENV_SECRET_KEY)):
            if name in overrides:
                continue
            value = env.get(env_var, "").strip()
            if not value:
                raise ConfigurationError(
                    f"the environment variable {env_var} is not set; "
                    "export it or pass the key to APIConfig() directly"
                )
            values[name] = value
        endpoint = env.get(ENV_ENDPOINT, "").strip()
        if endpoint:
            values["endpoint"] = endpoint
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: Any) -> APIConfig:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)
