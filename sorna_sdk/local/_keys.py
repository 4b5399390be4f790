"""Keypairs of the local gateway: given, taken from the environment, or generated once.

A generated keypair is kept as JSON in ``$XDG_CONFIG_HOME/sorna-sdk/local-keypair.json``
(``~/.config/...`` by default), readable by the user only, and reused on the next start.

Like ssh with its private keys, a keypair file or a secret-key file that group or others
may read or write is refused (:class:`KeyfileError`): it must be mode 0600 or stricter.
Messages never quote a file's content.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
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
    "read_secret_key_file",
    "resolve_keypair",
]

ENV_LOCAL_ACCESS_KEY = "SORNA_LOCAL_ACCESS_KEY"
ENV_LOCAL_SECRET_KEY = "SORNA_LOCAL_SECRET_KEY"  # noqa: S105 - a variable name
_ACCESS_KEY_ALPHABET = string.ascii_uppercase + string.digits
#: A secret-key file holds one line; anything longer is not one.
_MAX_SECRET_FILE = 4096


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


def read_secret_key_file(path: Path) -> str:
    """The secret key kept in ``path``: one line, the file readable by its owner only."""
    try:
        text = _read_private(path, "secret-key file", _MAX_SECRET_FILE + 1)
    except FileNotFoundError:
        raise KeyfileError(f"the secret-key file {path} does not exist") from None
    except UnicodeError:
        raise KeyfileError(f"the secret-key file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise KeyfileError(
            f"cannot read the secret-key file {path}: {exc.strerror or type(exc).__name__}"
        ) from None
    secret = text.strip()
    if len(text) > _MAX_SECRET_FILE or "\n" in secret or "\r" in secret:
        raise KeyfileError(f"the secret-key file {path} must hold the secret key on one line")
    if not secret:
        raise KeyfileError(f"the secret-key file {path} is empty")
    return secret


def resolve_keypair(
    access_key: str | None = None,
    secret_key: str | None = None,
    *,
    secret_key_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> tuple[Keypair, str]:
    """Pick the keypair: arguments, then the environment, then the keypair file.

    The access key comes from ``access_key``, else ``$SORNA_LOCAL_ACCESS_KEY``; the secret
    from ``secret_key`` or ``secret_key_file``, else ``$SORNA_LOCAL_SECRET_KEY``. With none of
    them the keypair file is used (created on first use); with only one half, ValueError.

    Returns the keypair and where it came from (``"arguments"``, ``"environment"``,
    ``"secret-key file"``, two of them joined by "and", ``"generated"`` or ``"file"``) for
    logging.
    """
    if secret_key and secret_key_file is not None:
        raise ValueError("give the secret key or a secret-key file, not both")
    env = os.environ if environ is None else environ
    access, access_from = access_key or "", "arguments"
    if not access:
        access, access_from = env.get(ENV_LOCAL_ACCESS_KEY, "").strip(), "environment"
    if secret_key:
        secret, secret_from = secret_key, "arguments"
    elif secret_key_file is not None:
        secret, secret_from = read_secret_key_file(secret_key_file), "secret-key file"
    else:
        secret, secret_from = env.get(ENV_LOCAL_SECRET_KEY, "").strip(), "environment"
    if access and secret:
        source = access_from if access_from == secret_from else f"{access_from} and {secret_from}"
        return Keypair(access, secret), source
    if access:
        raise ValueError(
            "give both the access key and the secret key: the secret key is missing "
            f"(--secret-key-file, or ${ENV_LOCAL_SECRET_KEY})"
        )
    if secret:
        raise ValueError(
            "give both the access key and the secret key: the access key is missing "
            f"(--access-key, or ${ENV_LOCAL_ACCESS_KEY})"
        )
    keypair, created = load_or_create_keypair(path or default_keypair_path(env))
    return keypair, "generated" if created else "file"


def _read_private(path: Path, what: str, limit: int) -> str:
    """Up to ``limit`` bytes of ``path`` as text; KeyfileError if others may read or write it."""
    # O_NONBLOCK: a FIFO in its place must not hang the start (it is refused below).
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyfileError(f"the {what} {path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if os.name == "posix" and mode & 0o077:
            raise KeyfileError(
                f"permissions {mode:04o} for the {what} {path} are too open: it holds a secret "
                f"key and must be readable and writable by you only (chmod 600 {path})"
            )
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        return handle.read(limit).decode("utf-8")


def _read(path: Path) -> Keypair:
    try:
        data = json.loads(_read_private(path, "keypair file", 1024 * 1024))
        access_key, secret_key = data["access_key"], data["secret_key"]
        if not isinstance(access_key, str) or not isinstance(secret_key, str):
            raise TypeError("keys must be strings")
        return Keypair(access_key=access_key, secret_key=secret_key)
    except (FileNotFoundError, KeyfileError):
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # Say what is wrong without echoing the file's content (it holds the secret).
        raise KeyfileError(
            f"cannot use the keypair file {path}: {type(exc).__name__}; "
            "fix or delete it to generate a new keypair"
        ) from None
