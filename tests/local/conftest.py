"""Fixtures shared by the gateway's runtime tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sorna_sdk.local._runtime.registry import KernelRegistry, RuntimeSettings


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[KernelRegistry]:
    reg = KernelRegistry(RuntimeSettings(root=tmp_path / "kernels", flush_window=0.5, pool_size=0))
    await reg.start()
    yield reg
    await reg.close()
