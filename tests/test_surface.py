"""The public surface: sorted and complete __all__, sync/async parity, default sessions."""

from __future__ import annotations

import asyncio
import inspect
import types

import pytest

import sorna_sdk
import sorna_sdk.models
from sorna_sdk import AsyncKernel, AsyncSession, Kernel, Session, StreamPty, SyncStreamPty


@pytest.mark.parametrize("module", [sorna_sdk, sorna_sdk.models])
def test_all_is_sorted_and_complete(module: types.ModuleType) -> None:
    names = module.__all__
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    public -= {"annotations"}
    assert public <= set(names) | {"__version__"}, public - set(names)
    for name in names:
        assert hasattr(module, name), name


def test_py_typed_is_shipped() -> None:
    from importlib.resources import files

    assert files("sorna_sdk").joinpath("py.typed").is_file()


def _public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(getattr(cls, name))
        for name in dir(cls)
        if not name.startswith("_") and callable(getattr(cls, name))
    }


def _comparable(sig: inspect.Signature) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


@pytest.mark.parametrize(
    ("sync_cls", "async_cls"),
    [(Kernel, AsyncKernel), (Session, AsyncSession), (SyncStreamPty, StreamPty)],
)
def test_sync_and_async_twins_have_the_same_methods(sync_cls: type, async_cls: type) -> None:
    sync_methods = _public_methods(sync_cls)
    async_methods = _public_methods(async_cls)
    assert set(sync_methods) == set(async_methods)
    for name, sig in sync_methods.items():
        assert _comparable(sig) == _comparable(async_methods[name]), name
        sync_fn = getattr(sync_cls, name)
        async_fn = getattr(async_cls, name)
        if inspect.iscoroutinefunction(async_fn):
            assert not inspect.iscoroutinefunction(sync_fn), name
        else:
            assert name in {"send"} or not inspect.iscoroutinefunction(sync_fn), name
    assert inspect.signature(sync_cls.__init__).parameters.keys() == (  # type: ignore[misc]
        inspect.signature(async_cls.__init__).parameters.keys()  # type: ignore[misc]
    )


def test_async_io_methods_are_coroutines() -> None:
    io_methods = ("get_or_create", "execute", "run", "get_info", "restart", "destroy", "upload")
    for name in (*io_methods, "stream_pty"):
        assert inspect.iscoroutinefunction(getattr(AsyncKernel, name)), name
        assert not inspect.iscoroutinefunction(getattr(Kernel, name)), name


def test_default_session_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    sorna_sdk.set_default_session(None)
    monkeypatch.delenv("SORNA_ACCESS_KEY", raising=False)
    monkeypatch.setenv("SORNA_SECRET_KEY", "hidden-secret-123")
    with pytest.raises(sorna_sdk.ConfigurationError, match="SORNA_ACCESS_KEY"):
        Kernel("abc")
    monkeypatch.setenv("SORNA_ACCESS_KEY", "AK")
    monkeypatch.setenv("SORNA_ENDPOINT", "http://127.0.0.1:1")
    try:
        kern = Kernel("abc")
        assert kern.session is sorna_sdk.get_default_session()
        assert kern.session.config.endpoint == "http://127.0.0.1:1"
        assert "hidden-secret-123" not in repr(kern.session)
    finally:
        sorna_sdk.get_default_session().close()
        sorna_sdk.set_default_session(None)


def test_default_async_session_is_per_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORNA_ACCESS_KEY", "AK")
    monkeypatch.setenv("SORNA_SECRET_KEY", "SK")

    async def grab() -> AsyncSession:
        session = AsyncKernel("abc").session
        assert session is sorna_sdk.get_default_async_session()
        await session.close()
        return session

    first = asyncio.run(grab())
    second = asyncio.run(grab())
    assert first is not second
    sorna_sdk.set_default_session(None)
