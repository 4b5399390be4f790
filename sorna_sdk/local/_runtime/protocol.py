"""The driver protocol: every message between the gateway and a kernel's driver.

A *driver* is the program that runs one kernel's language (``drivers/python_driver.py`` for
python3, lua5 and bash, ``drivers/node_driver.js`` for nodejs; which language uses which is in
``languages.py``). Every driver must behave as written here; ``tests/local/
test_driver_conformance.py`` checks each language's driver against it.

Channels
========

The gateway starts the driver (below its supervisor or inside bubblewrap, ``sandbox.py``)
with these open files; nothing else is inherited:

* **fd 0** is ``/dev/null``.
* **fd 1 and fd 2** are two pipes that the gateway reads as *raw output* (console kinds
  ``stdout`` and ``stderr``, decoded as UTF-8 with replacement). They carry what the driver
  cannot frame: output of child processes (``os.system``, ``subprocess``, ``bash -c``) and of
  C code. The driver's own output goes in frames.
* **The control socket**, a stream socket whose fd number is in ``SORNA_CTL_FD``: frames in
  both directions. The driver removes the variable from its environment and keeps the fd
  from its children (so that its EOF means "the gateway is gone").
* **The input pipe**, only for a language whose record has ``input_pipe`` (nodejs): the read
  end of a pipe whose fd number is in ``SORNA_INPUT_FD``. ``input`` frames go there instead
  of onto the socket, so that a driver with a single-threaded event loop can block on it.
* ``SORNA_GATEWAY_PID`` names the driver's parent: a driver whose parent is already another
  process exits at once (and on Linux asks for ``PR_SET_PDEATHSIG``).

Memory, process and core limits are set before the driver's first instruction (RLIMIT_DATA,
RLIMIT_NPROC, RLIMIT_CORE 0; see the language's ``memory``); a pooled driver gets its
RLIMIT_DATA through ``prlimit`` before ``configure``.

Framing
=======

Every message is a *frame*: a 4-byte big-endian unsigned length, then that many bytes of
UTF-8 JSON, an object ``{"t": kind, "d": data}`` (``d`` may be ``null``). The one Python codec
is ``drivers/framing.py`` (re-exported here; the Python driver loads the same file); the node
driver has its own copy in JavaScript. The gateway refuses a driver frame longer than its
``max_media_bytes`` (16 MiB by default) as soon as the header arrives, and a frame that is not
such an object: either kills the driver. A driver that receives an invalid frame exits.
Unknown kinds are ignored by both sides.

Gateway to driver
=================

``configure``: :class:`ConfigureData` ``{"lang", "cwd", "max_mem_kib", "environ"}``
    Always the first frame, sent once. The driver changes to ``cwd``, adds ``environ`` (a
    string-to-string object: the session's environment, Backend.AI's ``config.environ``) to
    its environment, sets up the kernel of ``lang`` (a canonical name) and answers ``ready``.
    ``max_mem_kib`` is informational (the limit is already applied). A pooled driver waits
    for this frame in the kernels' root.
``exec``: ``str`` or :class:`ExecData` ``{"code", "options"}``
    Run the code in the kernel's persistent state. The driver answers with output frames,
    possibly ``waiting-input`` (then ``input``) rounds, and exactly one ``finished``. The
    gateway sends the object form when the execute request had options (the client's
    ``options`` object as it came, :class:`ExecOptions`); every driver accepts both forms and
    ignores options it does not know. Options (python3; other drivers ignore them):

    ``"lastValue": true``
        When the code's last top-level statement is an expression whose value is not
        ``None``, that value is sent as a ``result`` frame (below) before ``finished``.
        Without the option (or with anything but ``true``) no ``result`` is sent.
    ``"figureFormats": ["png"]``
        The formats of matplotlib figures, in this order: ``"png"`` (``media`` ``image/png``,
        base64) and/or ``"svg"`` (``media`` ``image/svg+xml``, the text). Default, and for a
        value with neither: ``["png"]``.
``shell``: ``str``
    Run ``bash -c <command>`` in the work dir (batch mode's steps): stdin ``/dev/null``,
    fd 1 and 2 inherited (raw output), a process group of its own. Answered by one
    ``finished`` whose data always has ``exitCode``.
``input``: ``str``
    The line (without its newline) answering the latest ``waiting-input``; sent only then.
``complete``: :class:`CompleteData` ``{"code", "options"}``
    Completion candidates for the end of ``options["line"]`` (else of the last line of
    ``code``); ``options`` may also hold ``row``, ``col`` and ``post``. Answered by one
    ``completion``. Sent only while no run is going on.

The gateway sends ``exec``, ``shell`` and ``complete`` only after the previous one was
answered (``finished``, ``completion``): a driver handles one at a time, in order.

Driver to gateway
=================

``ready``: :class:`ReadyData` ``{"pid"}``
    The answer to ``configure``; ``pid`` is the driver's pid as it sees it (inside the
    sandbox's PID namespace), which identifies its process.
``stdout``, ``stderr``: ``str``
    Console text, at most :data:`TEXT_CHUNK` (64 Ki) characters per frame: a longer text is
    sent as several frames (a driver splits no UTF-16 surrogate pair).
``media``: ``[mime, data]``
    One media item, one frame: ``data`` is base64 for binary content, the text itself for a
    textual type (``image/svg+xml``). A frame above the gateway's ``max_media_bytes`` kills the
    driver (above): a driver sends what it has and leaves that cap to the gateway.
``result``: :class:`ResultBundle` (a MIME bundle: ``{mime: data}``)
    The value of the run's last expression (the ``lastValue`` option), a console item of its
    own: always ``"text/plain"`` (its ``repr()``), and ``"text/html"``, ``"image/png"``
    (base64) and ``"image/svg+xml"`` (the text) when the value has ``_repr_html_``,
    ``_repr_png_``, ``_repr_svg_`` (a matplotlib Figure: its image in the run's
    ``figureFormats``). At most one per run, after the run's other output.
``html``: ``str``; ``log``: ``str``
    An HTML fragment; a log line.
``sync``: ``null``
    "Raw output written to fd 1/2 so far (by me or by my children) belongs here": the gateway
    drains both pipes and puts what they held before the frames that follow. A driver sends
    it after a child process it waited for has ended, so that ``os.system`` output lands
    between the framed output around it.
``waiting-input``: :class:`WaitingInputData` ``{"is_password"}``
    The program blocks reading one line (``input()``, ``getpass``, ``io.read()``); the
    gateway answers with ``input``. A prompt is sent as ``stdout`` before this frame.
``finished``: :class:`FinishedData` ``{"exitCode", "error"}`` or ``null``
    The run of an ``exec`` or ``shell`` ended. ``null``, no ``exitCode`` or ``0``: it went
    well. Otherwise ``exitCode`` is ``1`` for an uncaught error (a syntax error included),
    ``N`` for an explicit exit with status N (``sys.exit(N)``, a shell's status), and
    :data:`SIGINT_EXIT` (130) for a run that SIGINT ended. A language without a way to read
    input (bash: stdin is ``/dev/null``) simply sees end of file.

    An ``exec`` that ended with an uncaught error (``exitCode`` 1) also carries ``error``, a
    :class:`RunErrorData` ``{"name", "value", "traceback"}``, where the language can say:

    * python3: ``type(exc).__name__``, ``str(exc)`` and the lines of
      ``traceback.format_exception`` without the driver's own frames (a ``SyntaxError``:
      ``format_exception_only``), the same text as on stderr. ``SystemExit`` is an exit
      status and an interrupt is exit code 130: neither has an error object.
    * nodejs: ``err.name``, ``err.message`` and the lines of ``err.stack`` (without the
      driver's frames; a thrown promise rejection that the run awaited too); a thrown value
      that is not an Error: ``"Error"``, its ``String()`` and the ``Uncaught ...`` line.
    * lua5: ``"LuaError"``, the message (``<input>:1: boom``) and the lines of the message and
      its ``stack traceback:``.
    * bash, and every ``shell``: no error object, the exit status only.

    ``traceback`` is a list of strings that each end with a newline (one may hold several
    lines, as ``format_exception``'s do): joined, they are the text the driver wrote to
    stderr, which it writes as before.
``completion``: ``list[str]``
    The answer to ``complete``: candidates, possibly none (a language whose record says
    ``completion=False`` always answers ``[]``).

Rich output of Python kernels
=============================

What python3 kernel code can do that turns into the frames above (the Python driver's
docstring has the details):

* ``display(obj)`` (a builtin, also ``sorna.display``) sends ``obj``'s richest
  representation: a matplotlib Figure's image (``media``, in the run's ``figureFormats``),
  ``_repr_png_`` (``media`` ``image/png``), ``_repr_svg_`` (``media`` ``image/svg+xml``),
  ``_repr_html_`` (``html``), else its ``repr()`` and a newline on ``stdout``.
  ``display(bundle, raw=True)`` sends the richest entry of a dict MIME bundle
  (``image/png``, ``image/svg+xml``, other ``image/*``, ``text/html``, ``text/plain``);
  bytes of a binary type are base64-encoded.
* ``sorna.display_media(mime, data)`` (bytes base64-encoded), ``sorna.display_html(html)``
  and ``sorna.log(text)`` send one ``media``, ``html``, ``log`` frame.
* matplotlib, if kernel code imports it: ``MPLBACKEND=Agg`` is set before kernel code runs;
  ``matplotlib.pyplot.show()`` sends every open figure as ``media`` (one frame per format of
  ``figureFormats``) and closes it; the figures still open when a run ends are sent the same
  way (except those that ``display`` or a ``result`` already sent in that run) and closed,
  before ``finished``. The driver imports nothing of matplotlib itself: ``pyplot.show`` is
  patched by an import hook when kernel code first imports ``matplotlib.pyplot``.

Ordering
========

* Frames are handled in the order they were sent, in both directions.
* Everything a run prints comes before its ``finished`` (and before ``waiting-input``): a
  driver that buffers output flushes it first. Output that appears after ``finished``
  (a background thread, a timer) belongs to whatever run the gateway collects next.
* stdout and stderr frames are in the order the program wrote them: a driver that buffers
  text flushes whenever the stream switches.
* Raw output has no order of its own with the frames: the gateway keeps it back and places
  it at the next *sync point*: a ``sync`` frame, a control frame (``ready``,
  ``waiting-input``, ``finished``, ``completion``), the driver's exit, or the moment a caller
  collects output. A driver therefore flushes its framed output before a child process
  starts writing, and sends ``sync`` once the child has ended. Between fd 1 and fd 2 the
  order is only as exact as reading two pipes allows.

Signals and the end
===================

* **SIGINT** (the gateway signals the driver's process, not its group) interrupts the run:
  the driver stops the program in its language's way (Python ``KeyboardInterrupt``, a Lua
  error raised from a debug hook, node's ``breakOnSigint`` and an awaited promise abandoned;
  a ``shell`` job's process group gets SIGINT, then SIGKILL after 0.5 s) and sends
  ``finished`` with ``exitCode`` 130. During ``waiting-input`` it ends the read too. While
  idle it is ignored. A driver that has not finished one second later is killed with its
  whole tree and replaced (``kernel.py``).
* **EOF on the control socket** (the gateway closed it, or died), a failed write to it, and
  EOF on the input pipe: the driver kills its process group and exits at once. The
  gateway's ``DriverProcess.close`` relies on this before it kills the tree itself.
* The driver's death (any exit) is the gateway's ``died`` item; it is not a frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, TypeAlias, TypedDict, get_args

from sorna_sdk._json import is_array, is_object, str_list
from sorna_sdk.local._runtime.drivers.framing import (
    MAX_FRAME,
    SIGINT_EXIT,
    TEXT_CHUNK,
    FrameDecoder,
    FrameError,
    FrameTooLarge,
    encode_frame,
    text_chunks,
)

__all__ = [
    "CONTROL_KINDS",
    "DRIVER_KINDS",
    "GATEWAY_KINDS",
    "MAX_FRAME",
    "OUTPUT_KINDS",
    "SIGINT_EXIT",
    "SYNC_KIND",
    "TEXT_CHUNK",
    "CompleteData",
    "CompleteOptions",
    "ConfigureData",
    "ControlKind",
    "DriverKind",
    "ExecData",
    "ExecOptions",
    "FinishedData",
    "FrameDecoder",
    "FrameError",
    "FrameTooLarge",
    "GatewayKind",
    "Kind",
    "OutputKind",
    "ReadyData",
    "ResultBundle",
    "RunErrorData",
    "WaitingInputData",
    "completion_candidates",
    "configure_data",
    "encode_frame",
    "exec_data",
    "exit_code",
    "finished_error",
    "ready_pid",
    "text_chunks",
    "waiting_input_data",
]

#: What the gateway sends to a driver.
GatewayKind: TypeAlias = Literal["configure", "exec", "shell", "input", "complete"]
#: Frames that become console items.
OutputKind: TypeAlias = Literal["stdout", "stderr", "media", "html", "log", "result"]
#: Frames that end a wait of the gateway (and are sync points).
ControlKind: TypeAlias = Literal["ready", "finished", "waiting-input", "completion"]
#: What a driver sends to the gateway.
DriverKind: TypeAlias = Literal[OutputKind, ControlKind, "sync"]
#: Every frame kind.
Kind: TypeAlias = Literal[GatewayKind, DriverKind]

GATEWAY_KINDS: Final[frozenset[str]] = frozenset(get_args(GatewayKind))
OUTPUT_KINDS: Final[frozenset[str]] = frozenset(get_args(OutputKind))
CONTROL_KINDS: Final[frozenset[str]] = frozenset(get_args(ControlKind))
#: Driver -> gateway: raw fd 1/2 output written so far belongs before the frames that follow.
SYNC_KIND: Final = "sync"
DRIVER_KINDS: Final[frozenset[str]] = OUTPUT_KINDS | CONTROL_KINDS | {SYNC_KIND}


class ConfigureData(TypedDict):
    """``configure``: the kernel's canonical language, work dir and memory limit (KiB)."""

    lang: str
    cwd: str
    max_mem_kib: int
    environ: dict[str, str]


class CompleteOptions(TypedDict, total=False):
    """``complete``'s options as a client sends them (every key optional)."""

    row: int
    col: int
    line: str
    post: str


class CompleteData(TypedDict):
    """``complete``: the code so far and the client's options."""

    code: str
    options: CompleteOptions | dict[str, Any]


class ReadyData(TypedDict):
    """``ready``: the driver's own pid (as it sees it)."""

    pid: int


class WaitingInputData(TypedDict):
    """``waiting-input``: whether the line is a password (clients should not echo it)."""

    is_password: bool


class ExecOptions(TypedDict, total=False):
    """``exec`` options a driver knows (python3); a client may send others, ignored."""

    lastValue: bool
    figureFormats: list[Literal["png", "svg"]]


class ExecData(TypedDict):
    """``exec``'s object form: the code and the execute request's options."""

    code: str
    options: ExecOptions | dict[str, Any]


class RunErrorData(TypedDict):
    """``finished``'s ``error``: the uncaught error's name, message and traceback lines."""

    name: str
    value: str
    traceback: list[str]


#: ``result``: the last expression's value as a MIME bundle (``text/plain`` always there).
ResultBundle = TypedDict(
    "ResultBundle",
    {"text/plain": str, "text/html": str, "image/png": str, "image/svg+xml": str},
    total=False,
)


class FinishedData(TypedDict, total=False):
    """``finished``: ``exitCode`` absent or 0 = success (the whole data may be ``null``).

    ``error`` only for an ``exec`` that an uncaught error ended, in a language that reports it.
    """

    exitCode: int
    error: RunErrorData


def configure_data(
    lang: str, cwd: str, max_mem_kib: int, environ: Mapping[str, str] | None = None
) -> ConfigureData:
    """The data of a ``configure`` frame."""
    return {"lang": lang, "cwd": cwd, "max_mem_kib": max_mem_kib, "environ": dict(environ or {})}


def exec_data(code: str, options: Mapping[str, Any] | None = None) -> str | ExecData:
    """The data of an ``exec`` frame: the code alone, or the object form when there are options."""
    return {"code": code, "options": dict(options)} if options else code


# ---- reading what a driver sent (a driver is not trusted: wrong shapes get defaults) -------


def ready_pid(data: object) -> int | None:
    """``ready``'s pid, ``None`` when the data has no integer pid."""
    pid = data.get("pid") if is_object(data) else None
    return pid if isinstance(pid, int) and not isinstance(pid, bool) else None


def waiting_input_data(data: object) -> WaitingInputData:
    """``waiting-input``'s data; anything malformed means "not a password"."""
    flag = data.get("is_password") if is_object(data) else None
    return {"is_password": flag is True}


def exit_code(data: object) -> int:
    """``finished``'s exit code: 0 for ``null``, no ``exitCode`` or a non-integer one."""
    code = data.get("exitCode") if is_object(data) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


def finished_error(data: object) -> RunErrorData | None:
    """``finished``'s error object, ``None`` when absent or malformed (the lines must be str)."""
    error = data.get("error") if is_object(data) else None
    if not is_object(error):
        return None
    name, value, lines = error.get("name"), error.get("value"), str_list(error.get("traceback"))
    if not (isinstance(name, str) and isinstance(value, str) and lines is not None):
        return None
    return {"name": name, "value": value, "traceback": lines}


def completion_candidates(data: object) -> list[str]:
    """``completion``'s candidates as strings; anything but a list means none."""
    return [str(c) for c in data] if is_array(data) else []
