"""Runtime settings and the per-kernel limits derived from a create request."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["KernelLimits", "RuntimeSettings", "resolve_limits"]


@dataclass(frozen=True)
class RuntimeSettings:
    """Knobs of the kernel runtime; times in seconds, memory in KiB."""

    root: Path  # kernels' work dirs live in root/<kernel_id>/
    flush_window: float = 2.0  # seconds before a query returns "continued"
    idle_timeout: float = 600.0  # reap kernels idle this long (0 = never)
    default_exec_timeout: float = 0.0  # 0 = no limit unless the request sets one
    max_exec_timeout: float = 3600.0  # requests are clamped to this
    default_max_mem_kib: int = 0  # 0 = no RLIMIT_AS
    max_mem_kib: int = 8 * 1024 * 1024  # requests are clamped to this
    pool_size: int = 1  # warm drivers per pooled language (0 = off)
    max_upload_files: int = 20
    max_upload_bytes: int = 1024 * 1024  # per file


@dataclass(frozen=True)
class KernelLimits:
    """Effective limits of one kernel (0 = none)."""

    exec_timeout: float
    max_mem_kib: int


def resolve_limits(
    settings: RuntimeSettings, max_mem_kib: int, exec_timeout: float
) -> KernelLimits:
    """Apply defaults for 0 and clamp to the settings' maxima."""
    timeout = float(exec_timeout) if exec_timeout and exec_timeout > 0 else 0.0
    timeout = timeout or settings.default_exec_timeout
    if settings.max_exec_timeout > 0 and timeout:
        timeout = min(timeout, settings.max_exec_timeout)
    mem = int(max_mem_kib) if max_mem_kib and max_mem_kib > 0 else 0
    mem = mem or settings.default_max_mem_kib
    if settings.max_mem_kib > 0 and mem:
        mem = min(mem, settings.max_mem_kib)
    return KernelLimits(exec_timeout=max(timeout, 0.0), max_mem_kib=max(mem, 0))
