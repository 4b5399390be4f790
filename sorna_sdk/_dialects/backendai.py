"""The Backend.AI dialect, API ``v4.20181215`` … ``v9.20250722`` (what Sorna became).

What it absorbs so that users never see it (``notes/backendai-modern.md`` §2):

* signing: ``BackendAI`` scheme, ``X-BackendAI-Version``, the body *not* hashed;
* routes: ``/kernel`` up to v4, ``/session`` from v5; the create body by version, as the
  official client builds it (``lang``/``image``, ``clientSessionToken``/``name``, where
  ``clusterSize`` goes);
* runs: the server names each run; continue and input send **both** ``runId`` (servers up to
  26.2 require it) and ``run_id`` (26.3 and later read only that);
* ``list_files``: the path goes in the query (26.3+) *and* a JSON body (up to 26.2), since
  both server lines report the same API version;
* answers: Python-repr info fields and the double-encoded file list are decoded by the
  models; problem types map onto the shared exception tree; ``X-RateLimit-Reset`` counts
  seconds.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Final, TypeVar

from .._json import is_object
from .._problems import BACKENDAI_BASE, CLIENT_ONLY, PROBLEMS
from .._protocol import (
    Call,
    Response,
    encode_json,
    header,
    json_model,
    kernel_path_segment,
    no_content,
    unexpected_body,
)
from ..auth import SigningPolicy
from ..exceptions import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ExecutionError,
    ImageNotFoundError,
    InstanceNotAvailableError,
    InsufficientPrivilegeError,
    InternalServerError,
    InvalidAPIParamsError,
    InvalidArgumentError,
    InvalidAuthParamsError,
    InvalidKernelStatusError,
    KernelBusyError,
    KernelCreationFailedError,
    KernelDestructionFailedError,
    KernelExecutionFailedError,
    KernelNotFoundError,
    KernelRestartFailedError,
    NotFoundError,
    NotImplementedByServerError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    SchedulingFailedError,
    ServiceUnavailableError,
    SessionAlreadyExistsError,
    build_error,
    parse_problem,
    status_class,
)
from ..models import (
    AuthorizeResponse,
    BatchRequest,
    Completions,
    DestroyResult,
    ExecuteRequest,
    ExecutionResult,
    FileList,
    HelloResponse,
    KernelInfo,
    SessionCreated,
    SessionInfo,
)
from ._base import (
    CreateReply,
    CreateSpec,
    Dialect,
    EventsTarget,
    PendingRun,
    StreamPath,
    TokenRule,
    Version,
    parse_version,
)

__all__ = ["PROBLEM_BASE", "BackendAI"]

T = TypeVar("T")

PROBLEM_BASE: Final = BACKENDAI_BASE
OLDEST: Final = "v4.20181215"
NEWEST: Final = "v9.20250722"
#: The revisions the official client and servers know, oldest first.
KNOWN_VERSIONS: Final = (
    "v4.20181215",
    "v4.20190115",
    "v4.20190315",
    "v4.20190615",
    "v5.20191215",
    "v6.20200815",
    "v6.20210815",
    "v6.20220315",
    "v6.20220615",
    "v6.20221201",
    "v6.20230315",
    "v7.20230615",
    "v8.20240315",
    "v8.20240915",
    "v9.20250722",
)
_SIGNING: Final = SigningPolicy(
    scheme="BackendAI", version_header="X-BackendAI-Version", hash_body=False
)
#: Session names: 4-64 characters, word characters with ``.``/``-`` inside (server rule).
_NAME = re.compile(r"\w[\w.-]*\w", re.ASCII)

#: Problem (by name in ``sorna_sdk._problems``) -> the class users catch.
_CLASSES: Final[Mapping[str, type[APIStatusError]]] = {
    "bad-request": BadRequestError,
    "invalid-auth-params": InvalidAuthParamsError,
    "invalid-api-params": InvalidAPIParamsError,
    "session-already-exists": SessionAlreadyExistsError,
    "quota-exceeded": QuotaExceededError,
    "auth-failed": AuthenticationError,
    "permission-denied": PermissionDeniedError,
    "insufficient-privilege": InsufficientPrivilegeError,
    "url-not-found": NotFoundError,
    "kernel-not-found": NotFoundError,  # refined by error_code: sessions or images
    "image-not-found": NotFoundError,
    "kernel-busy": KernelBusyError,
    "invalid-kernel-status": InvalidKernelStatusError,
    "rate-limit-exceeded": RateLimitError,
    "internal-server-error": InternalServerError,
    "kernel-creation-failed": KernelCreationFailedError,
    "kernel-destruction-failed": KernelDestructionFailedError,
    "kernel-restart-failed": KernelRestartFailedError,
    "kernel-execution-failed": KernelExecutionFailedError,
    "service-unavailable": ServiceUnavailableError,
    "instance-not-available": InstanceNotAvailableError,
    "scheduling-failed": SchedulingFailedError,
    "not-implemented": NotImplementedByServerError,
}


def _slug_table() -> dict[str, type[APIStatusError]]:
    table: dict[str, type[APIStatusError]] = {}
    for problem in PROBLEMS:
        cls = _CLASSES.get(problem.name)
        if problem.backendai is not None and cls is not None:
            table.setdefault(problem.backendai.slug, cls)
    for name, slugs in CLIENT_ONLY.items():
        for slug in slugs:
            table.setdefault(slug, _CLASSES[name])
    # "object-not-found" and "entity-not-found" name sessions and images alike.
    table["object-not-found"] = table["entity-not-found"] = NotFoundError
    table["generic-not-found"] = NotFoundError
    table["generic-forbidden"] = PermissionDeniedError
    table["method-not-allowed"] = APIStatusError
    return table


#: Problem slug -> class; refined by ``error_code`` and ``msg`` in ``BackendAI.error``.
PROBLEM_CLASSES: Final[Mapping[str, type[APIStatusError]]] = _slug_table()
_NO_AGENTS = re.compile(r"\bno (?:available )?agents?\b", re.IGNORECASE)


def _problem_class(status: int, problem: Mapping[str, Any] | None) -> type[APIStatusError]:
    problem = problem or {}
    slug = problem.get("type")
    cls = None
    if isinstance(slug, str) and slug.startswith(PROBLEM_BASE):
        cls = PROBLEM_CLASSES.get(slug[len(PROBLEM_BASE) :])
    if cls is None:
        return status_class(status)
    error_code = problem.get("error_code")
    code = error_code if isinstance(error_code, str) else ""
    msg = problem.get("msg")
    if cls is NotFoundError:
        # One slug ("object-not-found", "entity-not-found") covers sessions and images alike.
        if code.startswith(("session_", "kernel_")):
            return KernelNotFoundError
        if code.startswith("image_"):
            return ImageNotFoundError
    if cls is InvalidAPIParamsError and isinstance(msg, str) and _NO_AGENTS.search(msg):
        # 26.x reports an empty resource group as an API-parameter error.
        return SchedulingFailedError
    return cls


def _result(data: object) -> object:
    """Complete-mode answers through execute carry suggestions, not a console."""
    if not is_object(data) or "suggestions" not in data or "console" in data:
        return data
    suggestions: object = data.get("suggestions") or []
    return {"status": "finished", "console": [["completion", suggestions]]}


def _logs(response: Response) -> str:
    try:
        data = json.loads(response.content)
        logs = data["result"]["logs"]
        if not isinstance(logs, str):
            raise TypeError("logs is not a string")
    except (ValueError, KeyError, TypeError) as exc:
        raise unexpected_body(response, "logs", exc) from exc
    return logs


def _destroyed(response: Response) -> DestroyResult | None:
    # A retried destroy that finds the session gone (404) has nothing to report.
    return json_model(DestroyResult)(response) if response.status != 404 else None


def _raw(response: Response) -> Response:
    return response


def _content(response: Response) -> bytes:
    return response.content


class BackendAI(Dialect):
    """A Backend.AI manager at one API version."""

    family: ClassVar[str] = "Backend.AI"
    env_prefix: ClassVar[str] = "BACKEND_"
    env_default_version: ClassVar[str] = "auto"
    pty_output_binary: ClassVar[bool] = True

    def __init__(self, version: str) -> None:
        super().__init__(version)
        self._v: Version = parse_version(version)
        self._noun = "kernel" if self._v[0] <= 4 else "session"

    @classmethod
    def accepts(cls, version: str) -> bool:
        try:
            parsed = parse_version(version)
        except ValueError:
            return False
        return parse_version(OLDEST) <= parsed <= parse_version(NEWEST)

    @classmethod
    def versions(cls) -> tuple[str, ...]:
        return KNOWN_VERSIONS

    @classmethod
    def negotiate(cls, server_version: str) -> str:
        """``min(server, newest supported)``; ``ValueError`` if the server is older than v4."""
        server = parse_version(server_version)
        if server >= parse_version(NEWEST):
            return NEWEST
        if server < parse_version(OLDEST):
            raise ValueError(f"the server speaks {server_version}, older than {OLDEST}")
        return server_version

    @classmethod
    def probe(cls) -> Call[HelloResponse]:
        """The anonymous ``GET /`` that tells the server's version (before any is chosen)."""
        return Call("GET", "/", json_model(HelloResponse), _probe_error, signed=False)

    # -- signing, tokens, errors -------------------------------------------------------

    @property
    def signing(self) -> SigningPolicy:
        return _SIGNING

    @property
    def token_rule(self) -> TokenRule:
        return TokenRule(4, 64, what="client_token (the session name)")

    def new_token(self) -> str:
        return f"sorna-{secrets.token_hex(6)}"

    def check_token(self, token: str) -> None:
        super().check_token(token)
        if not _NAME.fullmatch(token):
            raise InvalidArgumentError(
                "client_token (the session name) may hold letters, digits, '_', '.' and '-', "
                f"and must start and end with a letter, digit or '_'; got {token!r}"
            )

    def error(self, response: Response) -> APIStatusError:
        problem = parse_problem(response.content)
        return build_error(
            _problem_class(response.status, problem),
            response.status,
            response.content,
            problem,
            response.headers,
            method=response.method,
            url=response.url,
            retry_after=self.retry_after(response.headers),
        )

    def retry_after(self, headers: Mapping[str, str]) -> float | None:
        for name in ("Retry-After", "X-RateLimit-Reset"):  # both in seconds
            raw = header(headers, name)
            if raw is not None:
                try:
                    return max(float(raw), 0.0)
                except ValueError:
                    continue
        return None

    # -- routes ------------------------------------------------------------------------

    def hello(self) -> Call[HelloResponse]:
        return Call("GET", "/", json_model(HelloResponse), self.error, signed=False)

    def authorize(self, echo: object = None) -> Call[AuthorizeResponse]:
        return self._json("POST", "/auth/test", {"echo": echo}, json_model(AuthorizeResponse))

    def create(self, spec: CreateSpec) -> Call[CreateReply]:
        self.check_token(spec.token)
        for name, value in (("max_mem", spec.max_mem), ("exec_timeout", spec.exec_timeout)):
            if value:
                raise self.unsupported_option(name)

        def parse(response: Response) -> CreateReply:
            reply = json_model(SessionCreated)(response)
            return CreateReply(
                kernel_id=reply.reference or spec.token,
                created=reply.created,
                model=reply,
                status=reply.status,
                service_ports=tuple(reply.service_ports or ()),
            )

        wait = spec.max_wait or 0
        return Call(
            "POST",
            f"/{self._noun}",
            parse,
            self.error,
            content=encode_json(self._create_body(spec)),
            content_type="application/json",
            # With reuse a repeat returns the same session; without, it would clash.
            idempotent=spec.reuse,
            extra_timeout=float(wait),
        )

    def info(self, kernel_id: str) -> Call[KernelInfo]:
        parse: Callable[[Response], KernelInfo] = json_model(SessionInfo)
        return Call("GET", self._path(kernel_id), parse, self.error)

    def restart(self, kernel_id: str) -> Call[None]:
        return Call("PATCH", self._path(kernel_id), no_content, self.error)

    def destroy(self, kernel_id: str, *, forced: bool = False) -> Call[DestroyResult | None]:
        return Call(
            "DELETE",
            self._path(kernel_id),
            _destroyed,
            self.error,
            params=(("forced", "true"),) if forced else (),
            done_on_retry=frozenset({404}),
        )

    def execute(
        self,
        kernel_id: str,
        request: ExecuteRequest,
        pending: PendingRun | None,
        *,
        eager: bool = False,
        offset: int | None = None,
    ) -> Call[ExecutionResult]:
        body = self._execute_body(request, pending)
        if eager:
            body["eager"] = True
        if offset is not None:
            body["offset"] = offset
        return Call(
            "POST",
            self._path(kernel_id),
            json_model(ExecutionResult, "result", prepare=_result),
            self.error,
            content=encode_json(body),
            content_type="application/json",
            idempotent=False,
        )

    def complete(self, kernel_id: str, code: str, *, row: int, col: int) -> Call[Completions]:
        body = {"code": code, "options": {"row": row, "col": col}}
        return self._json(
            "POST", self._path(kernel_id, "complete"), body, json_model(Completions, "result")
        )

    def interrupt(self, kernel_id: str) -> Call[None]:
        return Call("POST", self._path(kernel_id, "interrupt"), no_content, self.error)

    def upload(self, kernel_id: str, files: Sequence[tuple[str, bytes]]) -> Call[None]:
        parts = [("src", (name, data)) for name, data in files]
        return Call("POST", self._path(kernel_id, "upload"), no_content, self.error, files=parts)

    def download(self, kernel_id: str, paths: Sequence[str]) -> Call[Response]:
        return Call(
            "POST",
            self._path(kernel_id, "download"),
            _raw,
            self.error,
            params=tuple(("files", path) for path in paths),
        )

    def download_single(self, kernel_id: str, path: str) -> Call[bytes]:
        return Call(
            "POST",
            self._path(kernel_id, "download_single"),
            _content,
            self.error,
            params=(("file", path),),
        )

    def list_files(self, kernel_id: str, path: str) -> Call[FileList]:
        # 26.3+ read ?path=, earlier servers a JSON body; both report v9.20250722.
        return Call(
            "GET",
            self._path(kernel_id, "files"),
            json_model(FileList),
            self.error,
            params=(("path", path),),
            content=encode_json({"path": path}),
            content_type="application/json",
        )

    def logs(self, kernel_id: str) -> Call[str]:
        return Call("GET", self._path(kernel_id, "logs"), _logs, self.error)

    def pty_path(self, kernel_id: str) -> StreamPath:
        return StreamPath(f"/stream/{self._noun}/{kernel_path_segment(kernel_id)}/pty")

    def execute_stream_path(self, kernel_id: str) -> StreamPath:
        if self._v < (4, "20190115"):
            raise self.unsupported("stream_execute()", since="v4.20190115")
        return StreamPath(f"/stream/{self._noun}/{kernel_path_segment(kernel_id)}/execute")

    def events_path(self, target: EventsTarget) -> StreamPath:
        name = target.name or target.kernel_id
        if self._v[0] >= 6:
            # 26.x filters by sessionName only (sessionId is parsed, then ignored), so the
            # stream is filtered again on the client side.
            return StreamPath("/events/session", (("sessionName", name), ("scope", "*")))
        if self._v[0] == 5:
            return StreamPath("/events/session", (("name", name),))
        return StreamPath("/stream/kernel/_/events", (("sessionId", name),))

    def encode_execute_start(
        self, code: str, mode: str, options: Mapping[str, object] | None
    ) -> str:
        opts = dict(options or {})
        if mode == "batch":
            opts = {"clean": None, **opts}  # the key the official client always sends
        return json.dumps({"code": code, "mode": mode, "options": opts})

    # -- bodies ------------------------------------------------------------------------

    def _create_body(self, spec: CreateSpec) -> dict[str, Any]:
        """The create body this API version expects, key for key as backend.ai-client 26.9
        builds it, except ``architecture``: the official client sends the *client's* machine
        type, which says nothing about the cluster, so the server's default is left to apply."""
        v = self._v
        config: dict[str, Any] = {
            "mounts": list(spec.mounts),
            "mount_ids": [],
            "environ": dict(spec.environ) if spec.environ is not None else None,
            "resources": dict(spec.resources or {}),
            "resource_opts": {},
            "scalingGroup": spec.resource_group,
        }
        body: dict[str, Any] = {
            "tag": None,
            ("name" if v[0] >= 5 else "clientSessionToken"): spec.token,
            "config": config,
        }
        if v >= (8, "20240915"):
            config["attach_network"] = None
        if v >= (6, "20220315"):
            body["dependencies"] = None
            body["callback_url"] = None
        if v >= (6, "20200815"):
            body["clusterSize"] = spec.cluster_size
            body["clusterMode"] = spec.cluster_mode
        else:
            config["clusterSize"] = spec.cluster_size
        if v >= (5, "20191215"):
            body["starts_at"] = None
            body["bootstrap_script"] = None
            config.update(mount_map={}, mount_id_map={}, mount_options={}, preopen_ports=None)
        if v >= (4, "20190615"):
            body.update(
                owner_access_key=None,
                domain=spec.domain or "default",
                group=spec.group or "default",
                type=spec.session_type or "interactive",
                enqueueOnly=spec.enqueue_only,
                maxWaitSeconds=spec.max_wait or 0,
                reuseIfExists=spec.reuse,
                startupCommand=spec.startup_command,
            )
        else:
            for name, value, default in (
                ("session_type", spec.session_type, None),
                ("enqueue_only", spec.enqueue_only, False),
                ("max_wait", spec.max_wait, None),
                ("reuse", spec.reuse, True),
                ("startup_command", spec.startup_command, None),
            ):
                if value != default:
                    raise self.unsupported_option(name, since="v4.20190615")
        body["image" if v > (4, "20181215") else "lang"] = spec.lang
        return body

    def _execute_body(self, request: ExecuteRequest, pending: PendingRun | None) -> dict[str, Any]:
        if pending is not None:
            if pending.run_id is None:
                raise ExecutionError(
                    "cannot continue the run: the server did not name it (no runId)"
                )
            if pending.status == "waiting-input":
                mode, code = "input", request.code
            elif request.code:
                raise InvalidArgumentError(
                    f"the last run is {pending.status}, not finished; continue it with "
                    "execute('') (or run()), or interrupt() it, before sending new code"
                )
            else:
                mode, code = "continue", ""
            return {"mode": mode, "code": code, "runId": pending.run_id, "run_id": pending.run_id}
        body: dict[str, Any] = {"mode": request.mode, "code": request.code, "runId": None}
        if isinstance(request, BatchRequest):
            body["options"] = {"clean": None, **request.options.to_wire()}
        elif request.options is not None:
            body["options"] = request.options.to_wire()
        return body

    # -- helpers -----------------------------------------------------------------------

    def unsupported_option(self, name: str, *, since: str | None = None) -> InvalidArgumentError:
        """The error for a create option this API version has no field for."""
        if since is not None:
            return self.unsupported(f"get_or_create({name}=...)", since=since)
        hint = {
            "max_mem": "pass resources={'mem': '4g'} instead",
            "exec_timeout": "interrupt() a run, or use a batch session's timeout",
        }.get(name, "")
        return InvalidArgumentError(
            f"get_or_create({name}=...) is a Sorna v2 option; Backend.AI has no such field"
            + (f": {hint}" if hint else "")
        )

    def _path(self, kernel_id: str, action: str | None = None) -> str:
        path = f"/{self._noun}/{kernel_path_segment(kernel_id)}"
        return f"{path}/{action}" if action else path

    def _json(self, method: str, path: str, body: Any, parse: Callable[[Response], T]) -> Call[T]:
        return Call(
            method,
            path,
            parse,
            self.error,
            content=encode_json(body),
            content_type="application/json",
        )


def _probe_error(response: Response) -> APIStatusError:
    return BackendAI(NEWEST).error(response)
