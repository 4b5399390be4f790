"""The kernel registry: get-or-create by (owner, token, language), lookup, destroy, idle reaping.

Kernel ids are UUIDs (32 hex digits; the dashed form finds the same kernel), so that either
dialect reaches a kernel the other created. The registry publishes each kernel's lifecycle on
``events`` (:mod:`.events`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Final

from sorna_sdk.local._runtime.errors import (
    InvalidParameters,
    KernelNotFound,
    QuotaExceeded,
    ServiceUnavailable,
    SessionExists,
)
from sorna_sdk.local._runtime.events import EventHub
from sorna_sdk.local._runtime.files import OUTPUT_DIR, remove_tree
from sorna_sdk.local._runtime.kernel import LocalKernel
from sorna_sdk.local._runtime.languages import available_languages, canonical_language
from sorna_sdk.local._runtime.limits import RuntimeSettings, resolve_limits
from sorna_sdk.local._runtime.pool import DriverLauncher

__all__ = ["KernelRegistry", "LocalKernel", "RuntimeSettings", "normal_id"]

log: logging.Logger = logging.getLogger(__name__)

_Key = tuple[str, str, str]


@dataclass(frozen=True)
class _Spec:
    """What a new kernel is created with."""

    max_mem_kib: int
    exec_timeout: float
    environ: Mapping[str, str] | None
    resources: Mapping[str, str] | None
    kernel_id: str | None
    image: str


#: How many ended kernels are remembered to explain a later "not found".
_TOMBSTONES: Final = 1000


def normal_id(ref: str) -> str:
    """A kernel id as the registry keys it: a UUID's 32 hex digits (other text unchanged)."""
    if 32 <= len(ref) <= 36:
        try:
            return uuid.UUID(ref).hex
        except ValueError:
            pass
    return ref


class _KeyLock:
    """A get-or-create lock and how many callers hold or wait on it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class KernelRegistry:
    """All living kernels of one gateway."""

    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self._launcher = DriverLauncher(settings)
        #: Lifecycle events of every kernel (enqueued, started, terminating, terminated).
        self.events: EventHub = EventHub()
        self._kernels: dict[str, LocalKernel] = {}
        self._keys: dict[str, _Key] = {}
        self._by_key: dict[_Key, str] = {}
        # Serialises get-or-create per key; an entry lives only while someone holds or waits
        # on it (a fresh lock later is equivalent), so the dict cannot grow without bound.
        self._key_locks: dict[_Key, _KeyLock] = {}
        self._starting: dict[str, int] = {}  # kernels being launched, per owner
        self._tombstones: OrderedDict[str, str] = OrderedDict()
        self._cleanups: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        """Create the root, start the warm pool and the idle reaper."""
        self.settings.root.mkdir(parents=True, exist_ok=True)
        await self._launcher.start()
        if self.settings.idle_timeout > 0:
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def close(self) -> None:
        """End every kernel's process group and remove their work dirs."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        kernels = list(self._kernels.values())
        for kernel in kernels:
            self._forget(kernel, "gateway closed", shutdown=False)
        await asyncio.gather(*(self._end(k, "gateway closed") for k in kernels))
        await self._launcher.close()
        while self._cleanups:
            await asyncio.gather(*list(self._cleanups))
        self.events.close()

    def languages(self) -> tuple[str, ...]:
        """Canonical names of the languages available on this machine, sorted."""
        return tuple(sorted(available_languages()))

    async def get_or_create(
        self,
        owner: str,
        token: str,
        lang: str,
        *,
        max_mem_kib: int = 0,
        exec_timeout: float = 0,
        max_kernels: int | None = None,
        environ: Mapping[str, str] | None = None,
        resources: Mapping[str, str] | None = None,
        kernel_id: str | None = None,
        image: str = "",
    ) -> tuple[LocalKernel, bool]:
        """The living kernel of (owner, token, lang), or a new one; the bool says "created".

        A new kernel that would give ``owner`` more than ``max_kernels`` raises
        :class:`QuotaExceeded`; an existing one is returned whatever the count. A new kernel
        gets ``kernel_id`` if given (a UUID), ``environ`` in its environment, and keeps
        ``resources`` and ``image`` (what was asked for, for info to report).
        """
        canonical = canonical_language(lang)
        key = (owner, token, canonical)
        spec = _Spec(max_mem_kib, exec_timeout, environ, resources, kernel_id, image)
        async with self._locked(key):
            return await self._get_or_create_locked(key, owner, spec, max_kernels)

    async def get_or_create_named(
        self,
        owner: str,
        name: str,
        lang: str,
        *,
        reuse: bool = True,
        max_mem_kib: int = 0,
        exec_timeout: float = 0,
        max_kernels: int | None = None,
        environ: Mapping[str, str] | None = None,
        resources: Mapping[str, str] | None = None,
        kernel_id: str | None = None,
        image: str = "",
    ) -> tuple[LocalKernel, bool]:
        """Get-or-create where a name is unique per owner whatever the language.

        An owner's living kernel called ``name`` is returned (``reuse``) if it runs ``lang``;
        otherwise :class:`SessionExists` (no reuse) or :class:`InvalidParameters` (another
        language) is raised.
        """
        canonical = canonical_language(lang)
        async with self._locked((owner, name, "")):
            existing = self.find_named(owner, name)
            if existing is not None:
                if not reuse:
                    raise SessionExists(existing.kernel_id)
                if existing.lang != canonical:
                    raise InvalidParameters(
                        f"a session named {name!r} already exists with another image "
                        f"({existing.lang})"
                    )
            return await self.get_or_create(
                owner,
                name,
                canonical,
                max_mem_kib=max_mem_kib,
                exec_timeout=exec_timeout,
                max_kernels=max_kernels,
                environ=environ,
                resources=resources,
                kernel_id=kernel_id,
                image=image,
            )

    @contextlib.asynccontextmanager
    async def _locked(self, key: _Key) -> AsyncGenerator[None, None]:
        entry = self._key_locks.get(key)
        if entry is None:
            entry = self._key_locks[key] = _KeyLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0 and self._key_locks.get(key) is entry:
                del self._key_locks[key]

    async def _get_or_create_locked(
        self, key: _Key, owner: str, spec: _Spec, max_kernels: int | None
    ) -> tuple[LocalKernel, bool]:
        existing = self._by_key.get(key)
        if existing is not None and self._kernels[existing].running:
            kernel = self._kernels[existing]
            kernel.touch()
            return kernel, False
        if existing is not None:
            # Its driver died mid-run: the token gets a new kernel.
            stale = self._kernels[existing]
            self._forget(stale, stale.gone_reason or "kernel terminated", shutdown=True)
        if self._closed:
            raise ServiceUnavailable("The gateway is shutting down.")
        starting = self._starting.get(owner, 0)
        if max_kernels is not None and self.count(owner) + starting >= max_kernels:
            raise QuotaExceeded("You have reached your resource limit.")
        # Checked and reserved with no await in between, so racing creates of other
        # tokens cannot both take the last slot.
        self._starting[owner] = starting + 1
        try:
            return await self._create(key, owner, spec), True
        finally:
            self._starting[owner] -= 1

    async def _create(self, key: _Key, owner: str, spec: _Spec) -> LocalKernel:
        _, name, canonical = key
        limits = resolve_limits(self.settings, spec.max_mem_kib, spec.exec_timeout)
        kernel_id = normal_id(spec.kernel_id) if spec.kernel_id else uuid.uuid4().hex
        if kernel_id in self._kernels or kernel_id in self._tombstones:
            raise InvalidParameters(f"kernel id {kernel_id} is taken")
        workdir = (self.settings.root / kernel_id).resolve()
        (workdir / OUTPUT_DIR).mkdir(parents=True)
        publish = functools.partial(
            self.events.publish, kernel_id=kernel_id, owner=owner, session_name=name
        )
        publish("session_enqueued")
        try:
            proc = await self._launcher.launch(canonical, workdir, limits.max_mem_kib, spec.environ)
        except BaseException as exc:
            await remove_tree(workdir)
            publish("session_cancelled", reason=str(exc) or "kernel creation failed")
            raise
        kernel = LocalKernel(
            kernel_id=kernel_id,
            owner=owner,
            lang=canonical,
            workdir=workdir,
            settings=self.settings,
            limits=limits,
            launcher=self._launcher,
            proc=proc,
            on_gone=self._on_gone,
            name=name,
            environ=spec.environ,
            resources=spec.resources,
            image=spec.image,
        )
        self._kernels[kernel_id] = kernel
        self._keys[kernel_id] = key
        self._by_key[key] = kernel_id
        publish("session_started")
        return kernel

    def get(self, owner: str, kernel_id: str) -> LocalKernel:
        """The owner's living kernel with this id (raises KernelNotFound)."""
        kernel_id = normal_id(kernel_id)
        kernel = self._kernels.get(kernel_id)
        if kernel is None or kernel.owner != owner or not kernel.alive:
            reason = self._tombstones.get(kernel_id) if kernel is None else None
            raise KernelNotFound(reason or f"kernel {kernel_id} not found")
        return kernel

    def find_named(self, owner: str, name: str) -> LocalKernel | None:
        """The owner's newest living kernel created under ``name`` (token), if any."""
        found = [
            self._kernels[kid]
            for kid, (key_owner, token, _) in self._keys.items()
            if key_owner == owner and token == name and self._kernels[kid].running
        ]
        return max(found, key=lambda k: k.created_at, default=None)

    def lookup(self, owner: str, ref: str) -> LocalKernel:
        """The owner's living kernel by id, else by name (raises KernelNotFound)."""
        try:
            return self.get(owner, ref)
        except KernelNotFound:
            kernel = self.find_named(owner, ref)
            if kernel is None:
                raise
            return kernel

    async def destroy(self, owner: str, kernel_id: str) -> None:
        """End the kernel and remove its work dir (raises KernelNotFound).

        The kernel is forgotten before anything is awaited, so a racing destroy or restart
        of the same kernel answers 404.
        """
        kernel = self.get(owner, kernel_id)
        reason = f"kernel {kernel.kernel_id} was destroyed"
        self._forget(kernel, reason, shutdown=False)
        await self._end(kernel, reason)

    def count(self, owner: str) -> int:
        """Number of living kernels of this owner."""
        return sum(1 for k in self._kernels.values() if k.owner == owner and k.running)

    # ---- internals ------------------------------------------------------------------------

    def _on_gone(self, kernel: LocalKernel) -> None:
        self._forget(kernel, kernel.gone_reason, shutdown=True)

    def _forget(self, kernel: LocalKernel, reason: str, *, shutdown: bool) -> None:
        if self._kernels.get(kernel.kernel_id) is not kernel:
            return
        del self._kernels[kernel.kernel_id]
        key = self._keys.pop(kernel.kernel_id)
        if self._by_key.get(key) == kernel.kernel_id:
            del self._by_key[key]
        self._tombstones[kernel.kernel_id] = reason
        while len(self._tombstones) > _TOMBSTONES:
            self._tombstones.popitem(last=False)
        self.events.publish(
            "session_terminating",
            kernel_id=kernel.kernel_id,
            owner=kernel.owner,
            session_name=key[1],
            reason=reason,
        )
        if shutdown:
            task = asyncio.get_running_loop().create_task(self._end(kernel, reason))
            self._cleanups.add(task)
            task.add_done_callback(self._cleanups.discard)

    async def _end(self, kernel: LocalKernel, reason: str) -> None:
        try:
            await kernel.shutdown(reason)
        finally:
            self.events.publish(
                "session_terminated",
                kernel_id=kernel.kernel_id,
                owner=kernel.owner,
                session_name=kernel.name,
                reason=reason,
            )

    async def _reap(self) -> None:
        period = min(max(self.settings.idle_timeout / 4, 0.05), 5.0)
        while True:
            await asyncio.sleep(period)
            for kernel in list(self._kernels.values()):
                if kernel.idle_seconds() >= self.settings.idle_timeout:
                    log.info("reaping idle kernel %s", kernel.kernel_id)
                    reason = f"kernel {kernel.kernel_id} was idle too long"
                    self._forget(kernel, reason, shutdown=True)
