"""Kernel driver for python3, lua5 and bash kernels (stdlib only; lua5 also needs ``lupa``).

The gateway runs this file's source with ``python -u -c <source> <path of framing.py>``. It
speaks the driver protocol (``sorna_sdk/local/_runtime/protocol.py``) over the socket whose fd
is in ``SORNA_CTL_FD``, with the frame codec of ``framing.py`` (the gateway's own, loaded by
path: this source cannot import the SDK), and leaves fd 1 and fd 2 as raw pipes that the
gateway also reads, for output of subprocesses and C code.

Rich output from Python code: the name ``sorna`` is predefined in the kernel namespace (it is
also importable as ``sorna_display``), and ``display`` is a builtin::

    sorna.display_html("<b>hi</b>")
    sorna.display_media("image/png", png_bytes)   # bytes are sent base64-encoded
    sorna.display_media("image/svg+xml", svg_text)  # str is sent as is
    sorna.log("a log line")
    display(obj)                 # also sorna.display: obj's richest representation
    display({"image/png": png_bytes, "text/plain": "a plot"}, raw=True)  # a MIME bundle

``display(obj)`` sends, of what ``obj`` offers, the first of: a matplotlib Figure's image
(``media``, in the run's ``figureFormats``), ``_repr_png_()`` (``media`` ``image/png``,
base64), ``_repr_svg_()`` (``media`` ``image/svg+xml``, the text), ``_repr_html_()``
(``html``); anything else is its ``repr()`` on stdout with a newline. ``raw=True`` takes a
dict MIME bundle and sends its richest entry (``image/png``, ``image/svg+xml``, another
``image/*``, ``text/html``, ``text/plain``); image data may be bytes (base64-encoded here) or
a str (sent as is: base64 for a binary type).

Python kernels also get (``protocol.py`` has the shapes):

* a failed run's ``finished`` carries ``error`` ``{"name", "value", "traceback"}`` from the real
  exception (the traceback without this driver's frames, as printed on stderr); ``SystemExit``
  is an exit status (no error object), an interrupt exit code 130 (no error object);
* the ``exec`` options ``lastValue`` (the last expression statement's value, unless ``None``, as
  a ``result`` frame: a MIME bundle with ``text/plain`` and what ``_repr_*_`` give) and
  ``figureFormats`` (``["png"]`` by default, ``"svg"``);
* matplotlib, when kernel code imports it: ``MPLBACKEND=Agg`` is set before kernel code runs,
  ``plt.show()`` sends every open pyplot figure as ``media`` and closes it, and the figures
  still open when a run ends are sent (unless ``display`` already sent them in this run) and
  closed before ``finished``. Nothing of matplotlib is imported by the driver itself: a meta
  path hook patches ``matplotlib.pyplot.show`` when kernel code first imports it.
"""

# mypy needs the ``# type: ignore`` comments below (an override of ``TextIOBase.readline``
# that typeshed's ``_IOBase`` base rejects; assignments to ``Popen`` methods) and checks
# that none is stale; pyright, which finds no error on those lines, must not flag them.
# pyright: reportUnnecessaryTypeIgnoreComment=false

from __future__ import annotations

import ast
import base64
import builtins
import codecs
import contextlib
import getpass
import importlib.abc
import importlib.machinery
import importlib.util
import io
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import types
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn, cast


def _load_framing() -> types.ModuleType:
    """The gateway's frame codec, ``framing.py``: its path is this driver's first argument."""
    if len(sys.argv) > 1:
        path = sys.argv.pop(1)  # kernel code sees sys.argv == ["-c"], as for any -c program
    else:  # run as a file (by hand, for debugging): the codec is next to it
        path = os.path.join(os.path.dirname(os.path.abspath(globals()["__file__"])), "framing.py")
    spec = importlib.util.spec_from_file_location("_sorna_framing", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"python_driver: cannot load the frame codec from {path!r}")
    codec = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(codec)
    return codec


if TYPE_CHECKING:
    from sorna_sdk.local._runtime.drivers import framing
else:
    framing = _load_framing()

_RECV = 64 * 1024
_FLUSH_AT = 8 * 1024
_TICK = 0.05

_ctl = socket.socket(fileno=int(os.environ.pop("SORNA_CTL_FD")))
# Grandchildren must not hold the control socket, or its EOF would not mean "gateway gone".
os.set_inheritable(_ctl.fileno(), False)
_send_lock = threading.Lock()
_inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
_input: queue.Queue[str] = queue.Queue()
_executing = False
_busy = threading.Event()


def _die_with_parent() -> None:
    parent = int(os.environ.pop("SORNA_GATEWAY_PID", "0") or 0)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if parent and os.getppid() != parent:
        os._exit(0)


def _kill_group_and_exit() -> NoReturn:
    try:
        os.killpg(os.getpgrp(), signal.SIGKILL)
    finally:
        os._exit(0)


def send(kind: str, data: Any = None) -> None:
    frame = framing.encode_frame(kind, data)
    with _send_lock:
        try:
            _ctl.sendall(frame)
        except OSError:
            _kill_group_and_exit()


class _Output:
    """One buffer for stdout and stderr, flushed when the stream switches so order is exact."""

    def __init__(self) -> None:
        self.lock: threading.RLock = threading.RLock()
        self.kind: str = ""
        self.parts: list[str] = []
        self.size: int = 0

    def write(self, kind: str, text: str) -> None:
        if not text:
            return
        with self.lock:
            if kind != self.kind:
                self._flush()
                self.kind = kind
            self.parts.append(text)
            self.size += len(text)
            if self.size >= _FLUSH_AT:
                self._flush()

    def flush(self) -> None:
        with self.lock:
            self._flush()

    def _flush(self) -> None:
        if not self.parts:
            return
        text = "".join(self.parts)
        self.parts = []
        self.size = 0
        for piece in framing.text_chunks(text):
            send(self.kind, piece)


OUT = _Output()


def _ticker() -> None:
    # Tick fast only while user code runs; an idle kernel wakes once a second.
    while True:
        _busy.wait(timeout=1.0)
        time.sleep(_TICK)
        OUT.flush()


class _BinaryOut(io.RawIOBase):
    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        raw = bytes(data)
        OUT.write(self._kind, self._decoder.decode(raw))
        return len(raw)


class _TextOut(io.TextIOBase):
    encoding = "utf-8"
    errors = "strict"

    def __init__(self, kind: str, fd: int) -> None:
        self._kind = kind
        self._fd = fd
        self.buffer = _BinaryOut(kind)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        OUT.write(self._kind, text)
        return len(text)

    def flush(self) -> None:
        OUT.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._fd


def read_input(prompt: str = "", password: bool = False) -> str:
    """Ask the API client for one line: the next execute call's code is the answer."""
    OUT.write("stdout", str(prompt))
    OUT.flush()
    send("waiting-input", {"is_password": password})
    return _input.get()


class _TextIn(io.TextIOBase):
    encoding = "utf-8"

    def readable(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        return read_input() + "\n"

    def read(self, size: int | None = -1) -> str:
        return self.readline()

    def isatty(self) -> bool:
        return False


def _input_builtin(prompt: object = "") -> str:
    return read_input(str(prompt))


def _getpass(prompt: str = "Password: ", stream: object = None) -> str:
    return read_input(prompt, password=True)


def display_media(mime: str, data: bytes | str) -> None:
    """Show a media item; bytes are base64-encoded."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = base64.b64encode(bytes(data)).decode("ascii")
    OUT.flush()
    send("media", [str(mime), data])


def display_html(html: str) -> None:
    """Show an HTML fragment."""
    OUT.flush()
    send("html", str(html))


def _textual(mime: str) -> bool:
    return mime.startswith("text/") or mime.endswith(("+xml", "/json", "+json"))


class _Rich:
    """Per-run state of rich output: the figure formats asked for, the figures displayed."""

    #: ``figureFormats`` of the current run (``exec`` options), in the order asked.
    formats: tuple[str, ...] = ("png",)
    #: Figures ``display`` (or a ``result``) already sent in this run.
    shown: list[Any] = []  # noqa: RUF012 - one process-wide state

    @classmethod
    def start(cls, options: dict[str, Any]) -> None:
        asked = options.get("figureFormats")
        listed = cast("list[object]", asked) if isinstance(asked, list) else []
        wanted = [f for f in listed if isinstance(f, str) and f in ("png", "svg")]
        cls.formats = tuple(dict.fromkeys(wanted)) or ("png",)
        cls.shown = []


def _is_figure(obj: object) -> bool:
    module = sys.modules.get("matplotlib.figure")
    figure = getattr(module, "Figure", None)
    return isinstance(figure, type) and isinstance(obj, figure)


def _figure_images(fig: Any) -> list[tuple[str, str]]:
    """``(mime, data)`` of a figure in the run's formats (PNG base64, SVG text)."""
    images: list[tuple[str, str]] = []
    for fmt in _Rich.formats:
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt)
        if fmt == "svg":
            images.append(("image/svg+xml", buf.getvalue().decode("utf-8", "replace")))
        else:
            images.append(("image/png", base64.b64encode(buf.getvalue()).decode("ascii")))
    return images


def _repr_data(obj: object, method: str) -> object:
    """What ``obj._repr_<x>_()`` gives (``None``: nothing; IPython's (data, meta) tuples too)."""
    if isinstance(obj, type):
        return None  # a class's _repr_*_ are unbound methods
    func = getattr(obj, method, None)
    if not callable(func):
        return None
    try:
        data: object = func()
    except Exception:
        return None  # a broken representation is one the object does not have
    if isinstance(data, tuple):  # IPython's (data, metadata)
        items = cast("tuple[object, ...]", data)
        return items[0] if items else items
    return data


def _bytes_like(value: object) -> bytes | None:
    """A copy of ``value`` as ``bytes`` if it is ``bytes``, a ``bytearray`` or a ``memoryview``."""
    if isinstance(value, memoryview):
        return value.tobytes()
    return bytes(value) if isinstance(value, (bytes, bytearray)) else None


def _mime_bundle(obj: object) -> dict[str, str]:
    """The rich representations of ``obj``: the richest first (no ``text/plain``)."""
    bundle: dict[str, str] = {}
    if _is_figure(obj):
        bundle.update(_figure_images(obj))
        _Rich.shown.append(obj)
        return bundle
    png = _repr_data(obj, "_repr_png_")
    png_bytes = _bytes_like(png)
    if png_bytes is not None:
        bundle["image/png"] = base64.b64encode(png_bytes).decode("ascii")
    elif isinstance(png, str):
        bundle["image/png"] = png
    svg = _repr_data(obj, "_repr_svg_")
    svg_bytes = _bytes_like(svg)
    if svg_bytes is not None:
        bundle["image/svg+xml"] = svg_bytes.decode("utf-8", "replace")
    elif isinstance(svg, str):
        bundle["image/svg+xml"] = svg
    html = _repr_data(obj, "_repr_html_")
    if isinstance(html, str):
        bundle["text/html"] = html
    return bundle


def _send_bundle_entry(bundle: Mapping[str, object]) -> bool:
    """Send the richest entry of a MIME bundle; ``False`` when it has none that can be shown."""
    images = [m for m in bundle if m.startswith("image/")]
    for mime in sorted(images, key=lambda m: (m != "image/png", m != "image/svg+xml")):
        data = bundle[mime]
        raw = _bytes_like(data)  # SVG is sent as its text, binary types base64-encoded
        if raw is not None:
            display_media(mime, raw.decode("utf-8", "replace") if _textual(mime) else raw)
        else:
            display_media(mime, str(data))
        return True
    if "text/html" in bundle:
        display_html(str(bundle["text/html"]))  # display_html sends str(html) anyway
        return True
    if "text/plain" in bundle:
        sys.stdout.write(f"{bundle['text/plain']}\n")
        return True
    return False


def display(*objs: Any, raw: bool = False) -> None:
    """Show each object in its richest representation (see the module's docstring).

    ``raw=True``: each object is a MIME bundle (a dict of mime -> data) whose richest entry
    is sent.
    """
    for obj in objs:
        if raw:
            if not isinstance(obj, dict):
                raise TypeError(f"display(raw=True) needs a dict MIME bundle, not {type(obj)}")
            bundle = cast("dict[object, object]", obj)  # a caller's dict: keys of any type
            mimes = {key: data for key, data in bundle.items() if isinstance(key, str)}
            if not _send_bundle_entry(mimes):
                raise ValueError(f"no MIME type that can be shown in {sorted(map(str, bundle))}")
        elif not _send_bundle_entry(_mime_bundle(obj)):
            sys.stdout.write(repr(obj) + "\n")


def send_result(value: object) -> None:
    """``lastValue``'s console item ``["result", bundle]``: ``text/plain`` and the rich ones."""
    bundle = {"text/plain": repr(value)}
    bundle.update(_mime_bundle(value))
    OUT.flush()
    send("result", bundle)


def _send_figures(pyplot: Any, skip_shown: bool) -> None:
    """Send every open pyplot figure (in the run's formats) and close it."""
    for num in list(pyplot.get_fignums()):
        fig = pyplot.figure(num)
        try:
            if not (skip_shown and any(fig is f for f in _Rich.shown)):
                for mime, data in _figure_images(fig):
                    display_media(mime, data)
        except Exception:
            sys.stderr.write("".join(traceback.format_exc()))
        finally:
            pyplot.close(fig)


def _pyplot_show(*args: Any, **kwargs: Any) -> None:
    """``matplotlib.pyplot.show`` in a kernel: every open figure becomes a media item."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        _send_figures(pyplot, skip_shown=False)


def _end_of_run_figures() -> None:
    """Figures still open when a run ends are sent and closed (if pyplot was ever imported)."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None and callable(getattr(pyplot, "get_fignums", None)):
        _send_figures(pyplot, skip_shown=True)
    _Rich.shown = []


class _PatchingLoader(importlib.abc.Loader):
    """Runs ``matplotlib.pyplot`` with its own loader, then replaces its ``show``."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        module: types.ModuleType | None = self._loader.create_module(spec)
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        self._loader.exec_module(module)
        module.__dict__["_sorna_original_show"] = module.__dict__.get("show")
        module.__dict__["show"] = _pyplot_show

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)  # get_source, get_code, is_package, ...


class _PyplotHook(importlib.abc.MetaPathFinder):
    """A meta path finder that only acts on the first import of ``matplotlib.pyplot``."""

    def find_spec(
        self, fullname: str, path: Any, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "matplotlib.pyplot":
            return None
        spec: importlib.machinery.ModuleSpec | None = None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is not self and find is not None:
                spec = find(fullname, path, target)
                if spec is not None:
                    break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _PatchingLoader(spec.loader)
        return spec


def _make_display_module() -> types.ModuleType:
    mod = types.ModuleType("sorna_display", "Rich output for Sorna kernels.")

    def log(text: str) -> None:
        """Add a log item."""
        OUT.flush()
        send("log", str(text))

    mod.display_media = display_media  # type: ignore[attr-defined]
    mod.display_html = display_html  # type: ignore[attr-defined]
    mod.display = display  # type: ignore[attr-defined]
    mod.log = log  # type: ignore[attr-defined]
    return mod


def _flushing(func: Any, sync: bool = False) -> Any:
    """Flush framed output before ``func``; with ``sync``, tell the gateway when it returns.

    A ``sync`` frame means "what child processes wrote to fd 1/2 so far comes here", which
    keeps os.system output in order with the framed output around it.
    """

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        OUT.flush()
        try:
            return func(*args, **kwargs)
        finally:
            if sync:
                send("sync")

    return wrapper


def _on_sigint(signum: int, frame: Any) -> None:
    if _executing:
        raise KeyboardInterrupt


def _reader() -> None:
    decoder = framing.FrameDecoder()
    while True:
        try:
            chunk = _ctl.recv(_RECV)
        except OSError:
            chunk = b""
        if not chunk:
            _kill_group_and_exit()  # EOF: the gateway closed the channel or is gone
        try:
            frames = decoder.feed(chunk)
        except framing.FrameError:
            _kill_group_and_exit()  # the channel is unusable from here on
        for kind, data in frames:
            if kind == "input":
                _input.put(str(data or ""))
            else:
                _inbox.put((kind, data))


#: ``finished`` options of a query that failed: lets clients (``sorna run``) exit non-zero.
FAILED: dict[str, int] = {"exitCode": 1}
#: ``finished`` options of a run that SIGINT ended.
INTERRUPTED: dict[str, int] = {"exitCode": framing.SIGINT_EXIT}


def failed(name: str, value: str, tb: list[str]) -> dict[str, Any]:
    """``finished`` data of a failed run with its error object (``protocol.RunErrorData``)."""
    return {"exitCode": 1, "error": {"name": name, "value": value, "traceback": tb}}


def _exc_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__} object>"


def _json_object(value: object) -> dict[str, object]:
    """``value`` if it is a decoded JSON object (whose keys are strings), else ``{}``."""
    return cast("dict[str, object]", value) if isinstance(value, dict) else {}


def exec_request(data: object) -> tuple[str, dict[str, Any]]:
    """``exec`` data, a str or ``{"code", "options"}``: the code and the options."""
    if not isinstance(data, dict):
        return str(data or ""), {}
    request = cast("dict[str, object]", data)
    code = request.get("code")
    return code if isinstance(code, str) else "", _json_object(request.get("options"))


class Kernel:
    """What one language does with exec, shell and complete frames."""

    def run(self, code: str, options: dict[str, Any]) -> dict[str, Any] | None:
        """Run a query; return ``finished`` data (``None`` when it went well)."""
        raise NotImplementedError

    def complete(self, text: str) -> list[str]:
        return []


#: Seconds a shell job gets to end after SIGINT before its process group is killed.
_SHELL_GRACE = 0.5


def shell(cmd: str) -> int:
    """Run ``bash -c cmd`` with the driver's fds 1 and 2; stdin is /dev/null.

    The job gets a process group of its own, so that an interrupt reaches everything it
    started (SIGINT first, as a terminal would send it, then SIGKILL). Its status is the
    shell's: the exit code, or 128 + N for a job that signal N killed.
    """
    OUT.flush()
    proc = subprocess.Popen(["bash", "-c", cmd], stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        status = proc.wait()
        return 128 - status if status < 0 else status
    except BaseException:
        _end_job(proc)
        raise


def _end_job(proc: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGINT, _SHELL_GRACE), (signal.SIGKILL, None)):
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
            if sig == signal.SIGINT:
                os.killpg(proc.pid, signal.SIGKILL)  # whatever it left in its group
            return
        except subprocess.TimeoutExpired:
            continue
        except OSError:
            return


class PythonKernel(Kernel):
    """The python3 kernel: code runs in this process's ``__main__`` namespace."""

    def __init__(self) -> None:
        main = types.ModuleType("__main__")
        sys.modules["__main__"] = main
        module = _make_display_module()
        sys.modules["sorna_display"] = module
        main.__dict__["sorna"] = module
        builtins.display = display  # type: ignore[attr-defined]
        self.ns: dict[str, Any] = main.__dict__
        # matplotlib draws off-screen; pyplot.show is patched when kernel code imports pyplot.
        os.environ["MPLBACKEND"] = "Agg"
        if "MPLCONFIGDIR" not in os.environ and not _writable_config():
            # E.g. under the sandbox (the home is read-only): a cache of its own, quietly.
            os.environ["MPLCONFIGDIR"] = os.path.join(tempfile.gettempdir(), "sorna-matplotlib")
        sys.meta_path.insert(0, _PyplotHook())

    def run(self, code: str, options: dict[str, Any]) -> dict[str, Any] | None:
        _Rich.start(options)
        try:
            return self._run(code, options.get("lastValue") is True)
        finally:
            _end_of_run_figures()

    def _run(self, code: str, last_value: bool) -> dict[str, Any] | None:
        tail: types.CodeType | None = None
        try:
            if last_value:
                tree = ast.parse(code, "<input>")
                last = tree.body[-1] if tree.body else None
                if isinstance(last, ast.Expr):
                    tree.body.pop()
                    tail = compile(ast.Expression(last.value), "<input>", "eval")
                compiled = compile(tree, "<input>", "exec")
            else:
                compiled = compile(code, "<input>", "exec")
        except (SyntaxError, ValueError, OverflowError) as exc:
            lines = traceback.format_exception_only(type(exc), exc)
            sys.stderr.write("".join(lines))
            return failed(type(exc).__name__, _exc_str(exc), lines)
        try:
            exec(compiled, self.ns)  # noqa: S102 - running user code is the point
            if tail is not None:
                value = eval(tail, self.ns)  # noqa: S307 - the code's own last expression
                if value is not None:
                    send_result(value)
        except SystemExit as exc:
            if exc.code is None or exc.code == 0:
                return None
            return {"exitCode": exc.code if isinstance(exc.code, int) else 1}
        except BaseException as exc:
            tb = exc.__traceback__
            while tb is not None and tb.tb_frame.f_code.co_filename != "<input>":
                tb = tb.tb_next
            lines = traceback.format_exception(type(exc), exc, tb)
            sys.stderr.write("".join(lines))
            if isinstance(exc, KeyboardInterrupt):
                return INTERRUPTED
            return failed(type(exc).__name__, _exc_str(exc), lines)
        return None

    def complete(self, text: str) -> list[str]:
        import rlcompleter

        completer = rlcompleter.Completer(self.ns)
        found: list[str] = []
        for state in range(200):
            try:
                match = completer.complete(text, state)
            except Exception:
                break
            if match is None:
                break
            if match not in found:
                found.append(match)
        return found


class LuaKernel(Kernel):
    """The lua5 kernel: code runs in an embedded Lua 5.4 runtime (lupa)."""

    def __init__(self) -> None:
        import lupa.lua54

        # Any: lupa's bundled stubs lag its runtime (LuaRuntime's keywords, table members).
        lua: Any = lupa.lua54
        self.lua: Any = lua
        self.runtime: Any = lua.LuaRuntime(register_eval=False, unpack_returned_tuples=True)
        tostring: Any = self.runtime.globals().tostring

        def lua_print(*args: Any) -> None:
            OUT.write("stdout", "\t".join(str(tostring(a)) for a in args) + "\n")

        def lua_write(kind: Any, text: Any) -> None:
            OUT.write("stderr" if kind == "stderr" else "stdout", str(text))

        def lua_read(fmt: Any = "l") -> Any:
            fmt = str(fmt or "l").lstrip("*")
            line = read_input()
            if fmt.startswith("n"):
                try:
                    return float(line) if any(c in line for c in ".eE") else int(line)
                except ValueError:
                    return None
            return line + "\n" if fmt.startswith("L") else line

        def lua_sync() -> None:
            OUT.flush()
            send("sync")

        # io.write, io.stdout and io.stderr become framed streams (so that their order with
        # print is exact); io.read and io.stdin ask the client; os.execute's child writes to
        # the raw fds, so framed output is flushed before it and a sync frame follows it.
        setup = self.runtime.execute(
            """
            return function(pyprint, pywrite, pyread, pyflush, pysync)
              local function stream(kind)
                local f = {}
                function f:write(...)
                  local t = table.pack(...)
                  for i = 1, t.n do pywrite(kind, tostring(t[i])) end
                  return self
                end
                function f:flush() return self end
                function f:setvbuf() return true end
                function f:close() return nil, "cannot close standard file" end
                function f:seek() return nil, "Illegal seek", 29 end
                return setmetatable(f, {__name = "FILE*"})
              end
              local stdout, stderr = stream("stdout"), stream("stderr")
              local stdin = {}
              function stdin:read(fmt) return pyread(fmt) end
              function stdin:lines(fmt) return function() return pyread(fmt) end end
              function stdin:close() return nil, "cannot close standard file" end
              setmetatable(stdin, {__name = "FILE*"})
              io.stdout, io.stderr, io.stdin = stdout, stderr, stdin
              print = pyprint
              io.write = function(...) return stdout:write(...) end
              io.read = function(fmt) return pyread(fmt) end
              os.exit = function() error("os.exit() is disabled in this kernel", 2) end
              local execute = os.execute
              os.execute = function(...)
                pyflush()
                local r = table.pack(execute(...))
                pysync()
                return table.unpack(r, 1, r.n)
              end
              local popen = io.popen
              io.popen = function(...) pyflush() return popen(...) end
              io.output():setvbuf("no")
            end
            """
        )
        setup(lua_print, lua_write, lua_read, OUT.flush, lua_sync)
        # Lua has no signals: a debug hook returns to Python every so often, which lets the
        # SIGINT handler raise KeyboardInterrupt inside a busy Lua loop.
        self.runtime.execute(
            "return function(check) debug.sethook(function() check() end, '', 100000) end"
        )(_interrupt_point)
        self.load: Any = self.runtime.globals().load

    def run(self, code: str, options: dict[str, Any]) -> dict[str, Any] | None:
        try:
            loaded = self.load(code, "=<input>")  # the chunk, or (nil, message)
            chunk, err = (
                cast("tuple[Any, object]", loaded) if isinstance(loaded, tuple) else (loaded, None)
            )
            if chunk is None:
                OUT.write("stderr", f"{err}\n")
                return _lua_failed(str(err))
            chunk()
        except self.lua.LuaError as exc:
            OUT.write("stderr", f"{exc}\n")
            return _lua_failed(_exc_str(exc))
        return None


def _lua_failed(text: str) -> dict[str, Any]:
    """A Lua error's ``finished`` data: the message, then lupa's "stack traceback:" lines."""
    message = text.split("\nstack traceback:", 1)[0]
    return failed("LuaError", message, f"{text}\n".splitlines(keepends=True))


def _interrupt_point() -> None:
    """Called from Lua's debug hook: a pending SIGINT is raised here."""


class BashKernel(Kernel):
    """Each query runs as ``bash -c`` in the work dir: no shell state survives between queries."""

    def run(self, code: str, options: dict[str, Any]) -> dict[str, Any] | None:
        status = shell(code)
        return {"exitCode": status} if status else None


_KERNELS = {"python3": PythonKernel, "lua5": LuaKernel, "bash": BashKernel}


def _writable_config() -> bool:
    """Whether matplotlib's default config folder (``~/.config/matplotlib``) is writable."""
    folder = os.path.join(os.path.expanduser("~"), ".config", "matplotlib")
    while not os.path.exists(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            return False
        folder = parent
    return os.access(folder, os.W_OK)


def _configure(opts: dict[str, Any]) -> Kernel:
    cwd = str(opts.get("cwd") or os.getcwd())
    os.chdir(cwd)
    sys.path[0] = cwd
    environ = opts.get("environ")
    if isinstance(environ, dict):
        pairs = cast("dict[object, object]", environ).items()
        os.environ.update({str(k): str(v) for k, v in pairs if "=" not in str(k)})
    # Memory, process and core limits were set by the supervisor before this process ran.
    return _KERNELS[str(opts.get("lang") or "python3")]()


def _completion_prefix(code: str, opts: dict[str, Any]) -> str:
    line = opts.get("line")
    text = line if isinstance(line, str) and line else code.splitlines()[-1] if code else ""
    match = re.search(r"[\w.]*$", text)
    return match.group(0) if match else ""


def _serve() -> None:
    global _executing
    kernel: Kernel = Kernel()
    while True:
        try:
            kind, data = _inbox.get()
            if kind == "configure":
                try:
                    kernel = _configure(_json_object(data))
                except Exception:
                    # No kernel (lupa missing, an unknown language): the gateway sees the
                    # reason's last line and the exit before any ready.
                    sys.stderr.write("".join(traceback.format_exc()))
                    OUT.flush()
                    os._exit(1)
                send("ready", {"pid": os.getpid()})
                continue
            if kind == "complete":
                request = _json_object(data)
                prefix = _completion_prefix(
                    str(request.get("code") or ""), _json_object(request.get("options"))
                )
                send("completion", kernel.complete(prefix) if prefix else [])
                continue
            if kind not in ("exec", "shell"):
                continue  # unknown kinds are ignored (the protocol's rule)
            result: Any = None
            _executing = True
            _busy.set()
            try:
                if kind == "exec":
                    result = kernel.run(*exec_request(data))
                else:
                    result = {"exitCode": shell(str(data or ""))}
            finally:
                _executing = False
                _busy.clear()
            OUT.flush()
            send("finished", result)
        except KeyboardInterrupt:
            # SIGINT ended a run outside the kernel's own handling (a Lua hook, a shell job),
            # or raced with the end of an execution.
            sys.stderr.write("KeyboardInterrupt\n")
            OUT.flush()
            send("finished", INTERRUPTED)
        except Exception:
            # A driver fault must not end the kernel; report it like user errors.
            sys.stderr.write("[driver error]\n" + traceback.format_exc())
            OUT.flush()
            send("finished", FAILED)


def main() -> None:
    _die_with_parent()
    sys.stdout = _TextOut("stdout", 1)
    sys.stderr = _TextOut("stderr", 2)
    sys.stdin = _TextIn()
    builtins.input = _input_builtin
    getpass.getpass = _getpass
    # Wrapping os.system, not calling it: its output must stay in order with framed output.
    os.system = _flushing(os.system, sync=True)  # pyright: ignore[reportDeprecated]
    os._exit = _flushing(os._exit)
    popen: type[subprocess.Popen[Any]] = subprocess.Popen  # both str and bytes Popens
    popen.__init__ = _flushing(popen.__init__)  # type: ignore[method-assign]
    popen.wait = _flushing(popen.wait, sync=True)  # type: ignore[method-assign]
    popen.communicate = _flushing(popen.communicate, sync=True)  # type: ignore[method-assign]
    signal.signal(signal.SIGINT, _on_sigint)
    threading.Thread(target=_reader, daemon=True).start()
    threading.Thread(target=_ticker, daemon=True).start()
    _serve()


if __name__ == "__main__":
    main()
