"""The Sorna ``v2.20170315`` dialect (spec §5): routes, request bodies, answers.

Answers keep the 2017 server's shapes: an execute result is ``{"status", "console",
"options", "files"}`` and kernel info the ten fields of spec §5.2.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from aiohttp import web

from ..._constants import API_VERSION
from ..._json import is_object
from .._runtime.results import KernelStatus, RunResult
from .auth import current
from .execute_ws import ExecuteStreams
from .params import extension_keys, json_object, loads, number, optional, text
from .problems import HttpProblem, auth_problem, params_problem
from .pty_bridge import serve_pty
from .responses import json_response, no_content
from .runtime_api import KernelHandle, Kernels
from .uploads import read_uploads
from .wire import SORNA_PREFIXES

__all__ = ["SornaRoutes", "render_info", "render_result"]

log: logging.Logger = logging.getLogger(__name__)

#: Client tokens of the 2017 API: 8 to 80 characters.
TOKEN_LENGTH: Final = (8, 80)


def render_result(result: RunResult, *, extended: bool = False) -> dict[str, Any]:
    """An ExecutionResult as the 2017 server wrote it, plus ``error`` when the run failed with
    one; ``extended`` (the request sent ``offset``, or a stream) adds ``runId``, ``offset`` and
    ``exitCode`` (this gateway's extensions)."""
    body: dict[str, Any] = {
        "status": result.status,
        "console": result.console,
        "options": result.options,
        "files": result.files,
    }
    if extended:
        body.update(runId=result.run_id or None, offset=result.offset, exitCode=result.exit_code)
    if result.error is not None:
        body["error"] = dict(result.error)
    return body


def stream_frame(result: RunResult) -> dict[str, Any]:
    """A frame of the (extension) execute WebSocket of the Sorna dialect."""
    return render_result(result, extended=True)


def render_info(status: KernelStatus) -> dict[str, Any]:
    """Kernel info of spec §5.2."""
    return {
        "lang": status.lang,
        "age": status.age_ms,
        "queryTimeout": status.exec_timeout_ms,
        "idleTimeout": status.idle_timeout_ms,
        "memoryLimit": status.memory_limit_kib,
        "maxCpuCredit": 0,
        "numQueriesExecuted": status.queries,
        "idle": status.idle_ms,
        "memoryUsed": status.memory_used_kib,
        "cpuCreditUsed": status.cpu_used_ms,
    }


class SornaRoutes:
    """The route handlers of the Sorna dialect."""

    def __init__(
        self,
        kernels: Kernels,
        *,
        concurrency_limit: int,
        max_upload_files: int,
        max_upload_bytes: int,
        pty: Any,
        streams: ExecuteStreams,
    ) -> None:
        self.kernels = kernels
        self._streams = streams
        self.concurrency_limit = concurrency_limit
        self.max_upload_files = max_upload_files
        self.max_upload_bytes = max_upload_bytes
        self._pty = pty

    def add_to(self, router: web.UrlDispatcher) -> None:
        """Register every route under ``/v2`` (and ``/v1``, as the 2017 server did)."""
        for prefix in SORNA_PREFIXES:
            kernel = f"{prefix}/kernel/{{kernel_id}}"
            router.add_get(prefix, self.hello, allow_head=False)
            router.add_get(prefix + "/", self.hello, allow_head=False)
            router.add_get(f"{prefix}/authorize", self.authorize, allow_head=False)
            router.add_post(f"{prefix}/kernel/create", self.create)
            router.add_get(kernel, self.info, allow_head=False)
            router.add_patch(kernel, self.restart)
            router.add_delete(kernel, self.destroy)
            router.add_post(kernel, self.execute)
            router.add_post(f"{kernel}/upload", self.upload)
            router.add_post(f"{kernel}/interrupt", self.interrupt)
            router.add_get(f"{prefix}/stream/kernel/{{kernel_id}}/pty", self.pty, allow_head=False)
            router.add_get(
                f"{prefix}/stream/kernel/{{kernel_id}}/execute",
                self.stream_execute,
                allow_head=False,
            )
            router.add_route("*", f"{prefix}/folder", self.not_implemented)
            router.add_route("*", f"{prefix}/folder/{{name}}", self.not_implemented)

    @staticmethod
    def is_hello(path: str) -> bool:
        return path.rstrip("/") in SORNA_PREFIXES

    async def hello(self, request: web.Request) -> web.StreamResponse:
        return json_response({"version": API_VERSION})

    async def authorize(self, request: web.Request) -> web.StreamResponse:
        body = current().body
        echo: object = None
        if body.strip():
            try:
                data = loads(body)
            except ValueError:
                raise auth_problem("Malformed body") from None
            if not is_object(data):
                raise auth_problem("Malformed body")
            echo = data.get("echo")
        return json_response({"authorized": "yes", "echo": echo})

    async def create(self, request: web.Request) -> web.StreamResponse:
        data = json_object(current().body)
        lang = text(data, "lang")
        token = text(data, "clientSessionToken")
        low, high = TOKEN_LENGTH
        if not low <= len(token) <= high:
            raise params_problem(f"clientSessionToken must be {low} to {high} characters long")
        limits: dict[str, object] = optional(data, "limits", dict, "an object") or {}
        max_mem = number(limits, "maxMem", "limits.maxMem", integer=True)
        exec_timeout = number(limits, "execTimeout", "limits.execTimeout", integer=False)
        optional(data, "mounts", list, "a list")
        kernel, created = await self.kernels.get_or_create(
            current().owner,
            token,
            lang,
            max_mem_kib=int(max_mem),
            exec_timeout=float(exec_timeout),
            max_kernels=self.concurrency_limit,
        )
        return json_response({"kernelId": kernel.kernel_id, "created": created}, status=201)

    async def info(self, request: web.Request) -> web.StreamResponse:
        return json_response(render_info(self._kernel(request).info()))

    async def restart(self, request: web.Request) -> web.StreamResponse:
        await self._kernel(request).restart()
        return no_content()

    async def interrupt(self, request: web.Request) -> web.StreamResponse:
        await self._kernel(request).interrupt()
        return no_content()

    async def destroy(self, request: web.Request) -> web.StreamResponse:
        await self.kernels.destroy(current().owner, request.match_info["kernel_id"])
        return no_content()

    async def execute(self, request: web.Request) -> web.StreamResponse:
        kernel = self._kernel(request)
        data = json_object(current().body)
        mode = text(data, "mode")
        code = optional(data, "code", str, "a string") or ""
        options = optional(data, "options", dict, "an object or null")
        offset, eager = extension_keys(data)
        result = await kernel.execute(mode, code, options, eager=eager, offset=offset)
        return json_response({"result": render_result(result, extended=offset is not None)})

    async def upload(self, request: web.Request) -> web.StreamResponse:
        kernel = self._kernel(request)
        files = await read_uploads(
            request, max_files=self.max_upload_files, max_bytes=self.max_upload_bytes
        )
        await kernel.upload(files)
        return no_content()

    async def pty(self, request: web.Request) -> web.StreamResponse:
        return await serve_pty(request, self._kernel(request), self._pty, binary_output=False)

    async def stream_execute(self, request: web.Request) -> web.StreamResponse:
        """The execute WebSocket (an extension: the 2017 server had none)."""
        return await self._streams.serve(request, self._kernel(request), stream_frame)

    async def not_implemented(self, request: web.Request) -> web.StreamResponse:
        raise HttpProblem("not-implemented")

    def _kernel(self, request: web.Request) -> KernelHandle:
        return self.kernels.get(current().owner, request.match_info["kernel_id"])
