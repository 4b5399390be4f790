"""Keypairs of the local gateway: given, taken from the environment, or generated once.

A generated keypair is kept as JSON in ``$XDG_CONFIG_HOME/sorna-sdk/local-keypair.json``
(``~/.config/...`` by default), readable by the user only, and reused on the next start.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "ENV_LOCAL_ACCESS_KEY",
    "ENV_LOCAL_SECRET_KEY",
    "KeyfileError",
    "Keypair",
    "default_keypair_path",
    "generate_keypair",
    "load_or_create_keypair",
    "resolve_keypair",
]

ENV_LOCAL_ACCESS_KEY = "SORNA_LOCAL_ACCESS_KEY"
ENV_LOCAL_SECRET_KEY = "SORNA_LOCAL_SECRET_KEY"  # noqa: S105 - a variable name
_ACCESS_KEY_ALPHABET = string.ascii_uppercase + string.digits


class KeyfileError(RuntimeError):
    """The keypair file exists but cannot be used."""


@dataclass(frozen=True)
class Keypair:
    """An access key and its secret; the secret stays out of ``repr()``."""

    access_key: str
    secret_key: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.access_key or not self.secret_key:
            raise ValueError("both the access key and the secret key must be non-empty")


def generate_keypair() -> Keypair:
    """A fresh random keypair: ``AKIA`` + 16 upper-case letters/digits, a 40-char secret."""
    suffix = "".join(secrets.choice(_ACCESS_KEY_ALPHABET) for _ in range(16))
    return Keypair(access_key=f"AKIA{suffix}", secret_key=secrets.token_urlsafe(30))


def default_keypair_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/sorna-sdk/local-keypair.json`` (``~/.config`` when unset)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME", "").strip()
    root = Path(base) if base else Path.home() / ".config"
    return root / "sorna-sdk" / "local-keypair.json"


def load_or_create_keypair(path: Path) -> tuple[Keypair, bool]:
    """Read the keypair kept at ``path``, creating it (mode 0600) if absent; bool = created."""
    try:
        return _read(path), False
    except FileNotFoundError:
        pass
    keypair = generate_keypair()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    data = json.dumps({"access_key": keypair.access_key, "secret_key": keypair.secret_key})
    try:
        # O_EXCL: if another process created it meanwhile, use theirs.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path), False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(data + "\n")
    return keypair, True


def resolve_keypair(
    access_key: str | None = None,
    secret_key: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> tuple[Keypair, str]:
    """Pick the keypair: arguments, then the environment, then the keypair file.

    Returns the keypair and where it came from (``"arguments"``, ``"environment"``,
    ``"generated"`` or ``"file"``) for logging.
    """
    if access_key or secret_key:
        if not (access_key and secret_key):
            raise ValueError("give both the access key and the secret key, or neither")
        return Keypair(access_key, secret_key), "arguments"
    env = os.environ if environ is None else environ
    env_access = env.get(ENV_LOCAL_ACCESS_KEY, "").strip()
    env_secret = env.get(ENV_LOCAL_SECRET_KEY, "").strip()
    if env_access or env_secret:
        if not (env_access and env_secret):
            raise ValueError(
                f"set both {ENV_LOCAL_ACCESS_KEY} and {ENV_LOCAL_SECRET_KEY}, or neither"
            )
        return Keypair(env_access, env_secret), "environment"
    keypair, created = load_or_create_keypair(path or default_keypair_path(env))
    return keypair, "generated" if created else "file"


def _read(path: Path) -> Keypair:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        access_key, secret_key = data["access_key"], data["secret_key"]
        if not isinstance(access_key, str) or not isinstance(secret_key, str):
            raise TypeError("keys must be strings")
        return Keypair(access_key=access_key, secret_key=secret_key)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # Say what is wrong without echoing the file's content (it holds the secret).
        raise KeyfileError(
            f"cannot use the keypair file {path}: {type(exc).__name__}; "
            "fix or delete it to generate a new keypair"
        ) from None
