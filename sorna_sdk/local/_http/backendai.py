"""The Backend.AI dialect (API v4.20181215 ... v9.20250722): routes, request bodies, answers.

Both naming families are served at every version: ``/session`` (v5+) and ``/kernel`` (v4),
``/stream/session`` and ``/stream/kernel``. A session is addressed by its id (a UUID, dashed
or not) or its name. Answers follow the real manager 26.9 (``backendai_render``); where the
real server gives a 500 for bad input (an unknown execute mode, a continue without a run id),
this one gives a 400 problem.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import MultipartWriter, web

from ..._dialects.backendai import NEWEST
from ..._json import is_array, is_object, str_list
from ..._version import __version__
from .._runtime.errors import GatewayProblem, KernelNotFound, SessionExists, UnknownLanguage
from .._runtime.languages import resolve_image
from .._runtime.registry import normal_id
from .auth import current
from .backendai_render import info_body, listing_body, result_body, session_id, stream_frame
from .backendai_streams import serve_events
from .execute_ws import ExecuteStreams
from .params import extension_keys, json_object, loads
from .problems import HttpProblem, params_problem
from .pty_bridge import PtyStreams, serve_pty
from .responses import json_response, no_content
from .runtime_api import KernelHandle, Kernels
from .uploads import read_uploads

__all__ = ["BackendAIRoutes"]

log: logging.Logger = logging.getLogger(__name__)

#: Session names as the real manager accepts them: 4 to 64 word characters, dots, dashes.
NAME_PATTERN: Final = re.compile(r"(?=.{4,64}\Z)\w[\w.-]*\w\Z", re.ASCII)
EXECUTE_MODES: Final = ("query", "batch", "complete", "continue", "input")
#: Files one download may name (the real manager's limit).
MAX_DOWNLOAD_FILES: Final = 5
#: How long a call naming a session that is still being created waits for it.
PENDING_WAIT: Final = 60.0
_SLOT_NAMES: Final = frozenset({"cpu", "mem"})
_MEMORY: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kmgtp]?)i?b?", re.IGNORECASE)
_UNITS: Final = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}


@dataclass
class _Pending:
    """A session still being created after its create call answered (enqueueOnly, timeout)."""

    owner: str
    name: str
    kernel_id: str
    image: str
    task: asyncio.Task[tuple[KernelHandle, bool]]


@dataclass(frozen=True)
class _CreateSpec:
    name: str
    image: str
    lang: str
    reuse: bool
    enqueue_only: bool
    max_wait: float
    environ: dict[str, str]
    resources: dict[str, str]
    max_mem_kib: int


class BackendAIRoutes:
    """The route handlers of the Backend.AI dialect."""

    def __init__(
        self,
        kernels: Kernels,
        *,
        concurrency_limit: int,
        max_upload_files: int,
        max_upload_bytes: int,
        pty: PtyStreams,
        streams: ExecuteStreams,
    ) -> None:
        self.kernels = kernels
        self._streams = streams
        self.concurrency_limit = concurrency_limit
        self.max_upload_files = max_upload_files
        self.max_upload_bytes = max_upload_bytes
        self._pty = pty
        self._pending: dict[str, _Pending] = {}

    def add_to(self, router: web.UrlDispatcher) -> None:
        """Register the routes of both families (``/session`` from v5, ``/kernel`` up to v4)."""
        router.add_get("/", self.hello, allow_head=False)
        router.add_get("/auth/test", self.auth_test, allow_head=False)
        router.add_post("/auth/test", self.auth_test)
        router.add_post("/session/_/create", self.create)
        router.add_post("/kernel/create", self.create)
        router.add_get("/events/session", self.events, allow_head=False)
        router.add_get("/stream/kernel/_/events", self.events, allow_head=False)
        for noun in ("session", "kernel"):
            one = f"/{noun}/{{ref}}"
            router.add_post(f"/{noun}", self.create)
            router.add_get(one, self.info, allow_head=False)
            router.add_patch(one, self.restart)
            router.add_delete(one, self.destroy)
            router.add_post(one, self.execute)
            router.add_post(f"{one}/interrupt", self.interrupt)
            router.add_post(f"{one}/complete", self.complete)
            router.add_post(f"{one}/upload", self.upload)
            router.add_post(f"{one}/download", self.download)
            router.add_post(f"{one}/download_single", self.download_single)
            router.add_get(f"{one}/files", self.list_files, allow_head=False)
            router.add_get(f"{one}/logs", self.logs, allow_head=False)
            router.add_get(f"/stream/{noun}/{{ref}}/pty", self.pty, allow_head=False)
            router.add_get(f"/stream/{noun}/{{ref}}/execute", self.stream_execute, allow_head=False)

    @staticmethod
    def is_hello(path: str) -> bool:
        return path == "/"

    async def hello(self, request: web.Request) -> web.StreamResponse:
        return json_response({"version": NEWEST, "manager": f"sorna-sdk {__version__}"})

    async def auth_test(self, request: web.Request) -> web.StreamResponse:
        body = current().body
        echo: object = request.query.get("echo", "")
        if body.strip():
            try:
                data = loads(body)
            except ValueError:
                raise params_problem("the body must be a JSON object") from None
            if not is_object(data):
                raise params_problem("the body must be a JSON object")
            echo = data.get("echo", echo)
        return json_response({"authorized": "yes", "echo": echo})

    # ---- create --------------------------------------------------------------------------

    async def create(self, request: web.Request) -> web.StreamResponse:
        caller = current()
        spec = _create_spec(json_object(caller.body))
        legacy = caller.version.startswith("v4.")
        existing = self.kernels.find_named(caller.owner, spec.name) or self._pending_named(
            caller.owner, spec.name
        )
        if existing is not None and not spec.reuse:
            raise _exists(existing.kernel_id)
        kernel_id = uuid.uuid4().hex
        task = asyncio.get_running_loop().create_task(
            self.kernels.get_or_create_named(
                caller.owner,
                spec.name,
                spec.lang,
                reuse=spec.reuse,
                max_mem_kib=spec.max_mem_kib,
                max_kernels=self.concurrency_limit,
                environ=spec.environ,
                resources=spec.resources,
                kernel_id=kernel_id,
                image=spec.image,
            )
        )
        wait = 0.0 if spec.enqueue_only else (spec.max_wait or None)
        # The creation goes on if the caller leaves or its wait runs out, as on a real server.
        done, _ = await asyncio.wait({task}, timeout=wait)
        if not done:
            pending = _Pending(caller.owner, spec.name, kernel_id, spec.image, task)
            self._pending[kernel_id] = pending
            task.add_done_callback(lambda _: self._settle(pending))
            status = "PENDING" if spec.enqueue_only else "TIMEOUT"
            return _created(legacy, kernel_id, spec.name, status, created=True)
        try:
            kernel, created = task.result()
        except SessionExists as exc:
            raise _exists(exc.existing_id) from None
        return _created(legacy, kernel.kernel_id, spec.name, "RUNNING", created=created)

    async def on_shutdown(self, app: web.Application) -> None:
        """Stop the creations still going on, so that no kernel starts after the registry
        has closed."""
        tasks = [pending.task for pending in self._pending.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _settle(self, pending: _Pending) -> None:
        self._pending.pop(pending.kernel_id, None)
        if not pending.task.cancelled() and pending.task.exception() is not None:
            log.warning(
                "session %s could not be created: %s", pending.name, pending.task.exception()
            )

    def _pending_named(self, owner: str, ref: str) -> _Pending | None:
        for pending in self._pending.values():
            if pending.owner == owner and ref in (pending.name, pending.kernel_id):
                return pending
        return None

    # ---- one session ----------------------------------------------------------------------

    async def info(self, request: web.Request) -> web.StreamResponse:
        kernel = await self._kernel(request)
        return json_response(info_body(kernel, kernel.info()))

    async def restart(self, request: web.Request) -> web.StreamResponse:
        await (await self._kernel(request)).restart()
        return no_content()

    async def destroy(self, request: web.Request) -> web.StreamResponse:
        kernel = await self._kernel(request)
        try:
            status = kernel.info()
            stats: dict[str, Any] = {
                "status": "terminated",
                "cpu_used": status.cpu_used_ms,
                "mem": status.memory_used_kib * 1024,
                "num_queries": status.queries,
            }
        except KernelNotFound:  # its driver died: the session ends all the same
            stats = {"status": "terminated"}
        await self.kernels.destroy(current().owner, kernel.kernel_id)
        return json_response({"stats": stats})

    async def execute(self, request: web.Request) -> web.StreamResponse:
        kernel = await self._kernel(request)
        data = json_object(current().body)
        mode = data.get("mode")
        if mode not in EXECUTE_MODES:
            raise params_problem(f"mode must be one of {', '.join(EXECUTE_MODES)}, not {mode!r}")
        code = _optional_str(data, "code")
        options = _options(data, complete=mode == "complete")
        for key in ("runId", "run_id"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise params_problem(f"{key} must be a string or null")
        offset, eager = extension_keys(data)
        if mode in ("continue", "input"):
            _check_run(kernel, data, mode)
            if mode == "input" and kernel.state != "waiting-input":
                raise params_problem("the run is not waiting for input")
            code = code if mode == "input" else ""
            result = await kernel.execute(
                "query", code, None, eager=eager, offset=offset if mode == "continue" else None
            )
        else:
            result = await kernel.execute(mode, code, options, eager=eager)
        return json_response({"result": result_body(result, offset=offset is not None)})

    async def interrupt(self, request: web.Request) -> web.StreamResponse:
        await (await self._kernel(request)).interrupt()
        return no_content()

    async def complete(self, request: web.Request) -> web.StreamResponse:
        kernel = await self._kernel(request)
        data = json_object(current().body)
        code = _optional_str(data, "code")
        options = _options(data, complete=True)
        result = await kernel.execute("complete", code, options)
        found = next((data for kind, data in result.console if kind == "completion"), None)
        suggestions = [item for item in found if isinstance(item, str)] if is_array(found) else []
        return json_response({"result": {"status": "finished", "suggestions": suggestions}})

    async def upload(self, request: web.Request) -> web.StreamResponse:
        kernel = await self._kernel(request)
        files = await read_uploads(
            request, max_files=self.max_upload_files, max_bytes=self.max_upload_bytes
        )
        await kernel.upload(files)
        return no_content()

    async def download(self, request: web.Request) -> web.StreamResponse:
        kernel = await self._kernel(request)
        paths: list[str] = request.query.getall("files", [])
        if not paths:
            body = current().body
            if body.strip():  # older clients: {"files": [...]} in the body
                listed = str_list(json_object(body).get("files"))
                if listed is not None:
                    paths = listed
        if not paths or any(not isinstance(p, str) or not p for p in paths):
            raise params_problem("name the files to download: ?files=a&files=b (. for all)")
        if len(paths) > MAX_DOWNLOAD_FILES:
            raise params_problem(f"at most {MAX_DOWNLOAD_FILES} files per download")
        archives = await kernel.download(paths)
        writer = MultipartWriter("mixed")
        for archive in archives:
            writer.append(archive, {"Content-Type": "application/x-tar"})
        return web.Response(body=writer)

    async def download_single(self, request: web.Request) -> web.StreamResponse:
        kernel = await self._kernel(request)
        path = request.query.get("file")
        if not path:
            raise params_problem("name the file to download: ?file=name")
        data = await kernel.read_file(path)
        return web.Response(body=data, content_type="application/octet-stream")

    async def list_files(self, request: web.Request) -> web.StreamResponse:
        kernel = await self._kernel(request)
        path: Any = request.query.get("path")
        body = current().body
        if path is None and body.strip():  # servers up to 25.x read a JSON body
            path = json_object(body).get("path")
        if path is None:
            path = "."
        if not isinstance(path, str):
            raise params_problem("path must be a string")
        return json_response(listing_body(await kernel.list_files(path)))

    async def logs(self, request: web.Request) -> web.StreamResponse:
        kernel = await self._kernel(request)
        return json_response({"result": {"logs": kernel.logs()}})

    async def pty(self, request: web.Request) -> web.StreamResponse:
        kernel = await self._kernel(request)
        return await serve_pty(request, kernel, self._pty, binary_output=True)

    async def stream_execute(self, request: web.Request) -> web.StreamResponse:
        return await self._streams.serve(request, await self._kernel(request), stream_frame)

    async def events(self, request: web.Request) -> web.StreamResponse:
        owner = current().owner
        name = request.query.get("sessionName") or request.query.get("session_name") or "*"
        ref = request.query.get("sessionId") or request.query.get("session_id")
        if request.path.startswith("/stream/kernel/"):
            name, ref = ref or "*", None  # v4 names the session in sessionId
        only: set[str] | None = None
        for target in (name, ref):
            if target and target != "*":
                kernel = await self._lookup(owner, target)
                only = {kernel.kernel_id} if only is None else only & {kernel.kernel_id}
        scope = {part.strip() for part in request.query.get("scope", "*").split(",")}
        if not scope <= {"*", "session", "kernel"}:
            raise params_problem("scope must be *, session, kernel or session,kernel")
        return await serve_events(request, self.kernels.events, owner, only, scope)

    # ---- helpers --------------------------------------------------------------------------

    async def _kernel(self, request: web.Request) -> KernelHandle:
        owner = current().owner
        key = request.query.get("owner_access_key")
        if key and key != owner:
            raise KernelNotFound("Session not found (other owners' sessions are not visible)")
        return await self._lookup(owner, request.match_info["ref"])

    async def _lookup(self, owner: str, ref: str) -> KernelHandle:
        try:
            return self.kernels.lookup(owner, ref)
        except KernelNotFound:
            pending = self._pending_named(owner, ref) or self._pending.get(normal_id(ref))
            if pending is None or pending.owner != owner:
                raise
        try:
            kernel, _ = await asyncio.wait_for(asyncio.shield(pending.task), PENDING_WAIT)
        except asyncio.TimeoutError:
            raise HttpProblem(
                "service-unavailable", f"session {pending.name} is still starting"
            ) from None
        except GatewayProblem as exc:
            raise KernelNotFound(f"session {pending.name} could not start: {exc.title}") from None
        return kernel


def _exists(kernel_id: str) -> HttpProblem:
    return HttpProblem("session-already-exists", data={"existingSessionId": session_id(kernel_id)})


def _created(
    legacy: bool, kernel_id: str, name: str, status: str, *, created: bool
) -> web.Response:
    body: dict[str, Any]
    if legacy:  # v4: the session is its name
        body = {"kernelId": name}
    else:
        body = {"sessionId": session_id(kernel_id), "sessionName": name}
    body.update(status=status, servicePorts=[], created=created)
    if not created:
        body["service_ports"] = []  # a reused session's deprecated duplicate, as the server's
    return json_response(body, status=201)


def _check_run(kernel: KernelHandle, data: dict[str, Any], mode: str) -> None:
    # Servers up to 26.2 read runId, 26.3+ run_id: either is accepted here.
    run_id = data.get("run_id") if data.get("run_id") is not None else data.get("runId")
    if not run_id:  # its type was checked with the body
        raise params_problem(f"{mode} requires the run's id (runId or run_id)")
    if kernel.run_id and run_id != kernel.run_id:
        raise params_problem(f"run {run_id!r} is not the session's current run")


def _options(data: dict[str, Any], *, complete: bool) -> dict[str, Any] | None:
    options = data.get("options")
    if options is None:
        return None
    if not is_object(options):
        raise params_problem("options must be an object or null")
    if complete:
        for key, kind in (("row", int), ("col", int), ("line", str), ("post", str)):
            value = options.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
                what = "an integer" if kind is int else "a string"
                raise params_problem(f"options.{key} must be {what}")
    return options


def _optional_str(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise params_problem(f"{name} must be a string")
    return value


def _first(data: dict[str, Any], *names: str) -> Any:
    for name in names:
        if data.get(name) is not None:
            return data[name]
    return None


def _flag(data: dict[str, Any], default: bool, *names: str) -> bool:
    value = _first(data, *names)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise params_problem(f"{names[0]} must be true or false")
    return value


def _create_spec(data: dict[str, Any]) -> _CreateSpec:
    image = _first(data, "image", "lang")
    if not isinstance(image, str) or not image.strip():
        raise params_problem("image must be a non-empty string (an image reference)")
    name = _first(data, "name", "clientSessionToken", "session_name", "sessionName")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise params_problem(
            "name must be 4 to 64 letters, digits, '_', '.' or '-', "
            "starting and ending with a letter, digit or '_'"
        )
    kind = _first(data, "type", "sessionType", "session_type")
    if kind not in (None, "interactive"):
        raise params_problem(f"session type {kind!r} is not served here; use interactive")
    max_wait = _first(data, "maxWaitSeconds", "max_wait_seconds")
    if max_wait is None:
        max_wait = 0
    if isinstance(max_wait, bool) or not isinstance(max_wait, int) or not 0 <= max_wait <= 86400:
        raise params_problem("maxWaitSeconds must be an integer from 0 to 86400")
    config: object = data.get("config")
    if config is None:
        config = {}
    if not is_object(config):
        raise params_problem("config must be an object")
    size = _first(data, "clusterSize", "cluster_size")
    size = config.get("clusterSize", 1) if size is None else size
    if isinstance(size, bool) or size != 1:
        raise params_problem("clusterSize must be 1: the local gateway runs single-node sessions")
    mode = _first(data, "clusterMode", "cluster_mode")
    if mode not in (None, "single-node", "multi-node"):
        raise params_problem("clusterMode must be single-node or multi-node")
    for key in ("mounts", "mount_ids"):
        mounts = config.get(key)
        if mounts not in (None, []):
            raise params_problem(f"config.{key}: virtual folders are not served by this gateway")
    try:
        lang = resolve_image(image)
    except UnknownLanguage as exc:
        raise HttpProblem("image-not-found", f"Unknown image reference: {exc.title}") from None
    resources = _resources(config.get("resources"))
    return _CreateSpec(
        name=name,
        image=image,
        lang=lang,
        reuse=_flag(data, True, "reuseIfExists", "reuse"),
        enqueue_only=_flag(data, False, "enqueueOnly", "enqueue_only"),
        max_wait=float(max_wait),
        environ=_environ(config.get("environ")),
        resources=resources,
        max_mem_kib=_memory_kib(resources["mem"]) if "mem" in resources else 0,
    )


def _environ(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not is_object(value):
        raise params_problem("config.environ must be an object of strings")
    environ: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str) or not key or "=" in key or "\x00" in key + item:
            raise params_problem(f"config.environ[{key!r}] must be a string (names without '=')")
        environ[key] = item
    return environ


def _resources(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not is_object(value):
        raise params_problem("config.resources must be an object")
    resources: dict[str, str] = {}
    for slot, amount in value.items():
        if isinstance(amount, bool) or not isinstance(amount, (str, int, float)):
            raise params_problem(f"config.resources[{slot!r}] must be a number or a string")
        if slot not in _SLOT_NAMES:
            if str(amount) in ("0", "0.0"):
                continue
            raise params_problem(
                f"config.resources: this gateway has no {slot!r} slot (it offers cpu and mem)"
            )
        resources[slot] = str(amount)
    if "cpu" in resources:
        try:
            cpu = float(resources["cpu"])
        except ValueError:
            cpu = -1
        if not 0 < cpu <= 1024:
            raise params_problem("config.resources['cpu'] must be a number of cores")
    if "mem" in resources:
        _memory_kib(resources["mem"])
    return resources


def _memory_kib(amount: str) -> int:
    match = _MEMORY.fullmatch(amount.strip())
    if match is None:
        raise params_problem(f"config.resources['mem'] {amount!r} is not a size like 4g or 512m")
    size = float(match[1]) * _UNITS[match[2].lower()]
    if not 0 < size <= 2**50:
        raise params_problem("config.resources['mem'] must be more than 0 and at most 1 PiB")
    return max(int(size // 1024), 1)
