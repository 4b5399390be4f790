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
``exec``: ``str``
    Run the code in the kernel's persistent state. The driver answers with output frames,
    possibly ``waiting-input`` (then ``input``) rounds, and exactly one ``finished``.
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
    textual type (``image/svg+xml``).
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
``finished``: :class:`FinishedData` ``{"exitCode"}`` or ``null``
    The run of an ``exec`` or ``shell`` ended. ``null``, no ``exitCode`` or ``0``: it went
    well. Otherwise ``exitCode`` is ``1`` for an uncaught error (a syntax error included),
    ``N`` for an explicit exit with status N (``sys.exit(N)``, a shell's status), and
    :data:`SIGINT_EXIT` (130) for a run that SIGINT ended. A language without a way to read
    input (bash: stdin is ``/dev/null``) simply sees end of file.
``completion``: ``list[str]``
    The answer to ``complete``: candidates, possibly none (a language whose record says
    ``completion=False`` always answers ``[]``).

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

from sorna_sdk.local.runtime.drivers.framing import (
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
    "FinishedData",
    "FrameDecoder",
    "FrameError",
    "FrameTooLarge",
    "GatewayKind",
    "Kind",
    "OutputKind",
    "ReadyData",
    "WaitingInputData",
    "completion_candidates",
    "configure_data",
    "encode_frame",
    "exit_code",
    "ready_pid",
    "text_chunks",
    "waiting_input_data",
]

#: What the gateway sends to a driver.
GatewayKind: TypeAlias = Literal["configure", "exec", "shell", "input", "complete"]
#: Frames that become console items.
OutputKind: TypeAlias = Literal["stdout", "stderr", "media", "html", "log"]
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


class FinishedData(TypedDict, total=False):
    """``finished``: ``exitCode`` absent or 0 = success (the whole data may be ``null``)."""

    exitCode: int


def configure_data(
    lang: str, cwd: str, max_mem_kib: int, environ: Mapping[str, str] | None = None
) -> ConfigureData:
    """The data of a ``configure`` frame."""
    return {"lang": lang, "cwd": cwd, "max_mem_kib": max_mem_kib, "environ": dict(environ or {})}


# ---- reading what a driver sent (a driver is not trusted: wrong shapes get defaults) -------


def ready_pid(data: Any) -> int | None:
    """``ready``'s pid, ``None`` when the data has no integer pid."""
    pid = data.get("pid") if isinstance(data, dict) else None
    return pid if isinstance(pid, int) and not isinstance(pid, bool) else None


def waiting_input_data(data: Any) -> WaitingInputData:
    """``waiting-input``'s data; anything malformed means "not a password"."""
    flag = data.get("is_password") if isinstance(data, dict) else None
    return {"is_password": flag is True}


def exit_code(data: Any) -> int:
    """``finished``'s exit code: 0 for ``null``, no ``exitCode`` or a non-integer one."""
    code = data.get("exitCode") if isinstance(data, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


def completion_candidates(data: Any) -> list[str]:
    """``completion``'s candidates as strings; anything but a list means none."""
    return [str(c) for c in data] if isinstance(data, list) else []
