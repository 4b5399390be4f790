"""Runtime settings and the per-kernel limits derived from a create request."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sorna_sdk.local._runtime.errors import InvalidParameters

__all__ = ["KernelLimits", "RuntimeSettings", "resolve_limits"]


@dataclass(frozen=True)
class RuntimeSettings:
    """Knobs of the kernel runtime; times in seconds, memory in KiB."""

    root: Path  # kernels' work dirs live in root/<kernel_id>/
    flush_window: float = 2.0  # seconds before a query returns "continued"
    idle_timeout: float = 600.0  # reap kernels idle this long (0 = never)
    default_exec_timeout: float = 1800.0  # used when a request asks for 0 (no limit: never)
    max_exec_timeout: float = 6 * 3600.0  # requests are clamped to this
    default_max_mem_kib: int = 2 * 1024 * 1024  # used when a request asks for 0
    max_mem_kib: int = 16 * 1024 * 1024  # requests are clamped to this
    min_mem_kib: int = 64 * 1024  # smaller requests are refused (400): no kernel runs in less
    max_processes: int = 512  # RLIMIT_NPROC of a kernel's processes
    max_media_bytes: int = 16 * 1024 * 1024  # one media item (a frame) from a driver
    pool_size: int = 1  # warm drivers per pooled language (0 = off)
    max_upload_files: int = 20
    max_upload_bytes: int = 1024 * 1024  # per file
    #: How kernels are isolated: "bwrap" (bubblewrap namespaces) or "none" (resolved from
    #: the gateway's --sandbox auto|bwrap|none before the runtime starts).
    sandbox: Literal["none", "bwrap"] = "none"
    #: Give sandboxed kernels the host's network (default: loopback-less, no network at all).
    kernel_network: bool = False
    #: Paths kernels must not see under the sandbox (the keypair file's folder, ...).
    hidden_paths: tuple[Path, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class KernelLimits:
    """Effective limits of one kernel (0 = none)."""

    exec_timeout: float
    max_mem_kib: int


def resolve_limits(
    settings: RuntimeSettings, max_mem_kib: int, exec_timeout: float
) -> KernelLimits:
    """Apply defaults for 0 and clamp to the settings' maxima.

    Raises :class:`InvalidParameters` for a memory limit below ``min_mem_kib``.
    """
    if max_mem_kib and 0 < max_mem_kib < settings.min_mem_kib:
        raise InvalidParameters(
            f"maxMem must be at least {settings.min_mem_kib} KiB "
            f"({settings.min_mem_kib // 1024} MiB), or 0 for the default; got {max_mem_kib}"
        )
    timeout = float(exec_timeout) if exec_timeout and exec_timeout > 0 else 0.0
    timeout = timeout or settings.default_exec_timeout
    if settings.max_exec_timeout > 0 and timeout:
        timeout = min(timeout, settings.max_exec_timeout)
    mem = int(max_mem_kib) if max_mem_kib and max_mem_kib > 0 else 0
    mem = mem or settings.default_max_mem_kib
    if settings.max_mem_kib > 0 and mem:
        mem = min(mem, settings.max_mem_kib)
    return KernelLimits(exec_timeout=max(timeout, 0.0), max_mem_kib=max(mem, 0))
