"""sorna_sdk: a typed client for the Sorna code-execution API and Backend.AI clusters.

>>> from sorna_sdk import Kernel
>>> kern = Kernel.get_or_create('lua5', client_token='abc-session')  # doctest: +SKIP
>>> kern.execute('print("hello world")', mode='query')['console']  # doctest: +SKIP
[['stdout', 'hello world\\n']]
"""

# Lazy: ``import sorna_sdk`` costs almost nothing; a name's module loads on first use
# (``from sorna_sdk import Kernel`` or ``sorna_sdk.Kernel``). Type checkers read the
# imports below; at run time ``__getattr__`` does them.
import typing

from ._version import __version__ as __version__

if typing.TYPE_CHECKING:
    from ._constants import API_VERSION as API_VERSION
    from .config import APIConfig as APIConfig
    from .events import EventStream as EventStream
    from .events import SyncEventStream as SyncEventStream
    from .exceptions import APIConnectionError as APIConnectionError
    from .exceptions import APIResponseValidationError as APIResponseValidationError
    from .exceptions import APIStatusError as APIStatusError
    from .exceptions import APITimeoutError as APITimeoutError
    from .exceptions import AuthenticationError as AuthenticationError
    from .exceptions import BadRequestError as BadRequestError
    from .exceptions import ConfigurationError as ConfigurationError
    from .exceptions import ExecutionError as ExecutionError
    from .exceptions import ExecutionTimeoutError as ExecutionTimeoutError
    from .exceptions import ImageNotFoundError as ImageNotFoundError
    from .exceptions import InstanceNotAvailableError as InstanceNotAvailableError
    from .exceptions import InstanceNotFoundError as InstanceNotFoundError
    from .exceptions import InsufficientPrivilegeError as InsufficientPrivilegeError
    from .exceptions import InternalServerError as InternalServerError
    from .exceptions import InvalidAPIParamsError as InvalidAPIParamsError
    from .exceptions import InvalidArgumentError as InvalidArgumentError
    from .exceptions import InvalidAuthParamsError as InvalidAuthParamsError
    from .exceptions import InvalidKernelStatusError as InvalidKernelStatusError
    from .exceptions import KernelBusyError as KernelBusyError
    from .exceptions import KernelCreationFailedError as KernelCreationFailedError
    from .exceptions import KernelDestructionFailedError as KernelDestructionFailedError
    from .exceptions import KernelExecutionFailedError as KernelExecutionFailedError
    from .exceptions import KernelNotFoundError as KernelNotFoundError
    from .exceptions import KernelRestartFailedError as KernelRestartFailedError
    from .exceptions import NotFoundError as NotFoundError
    from .exceptions import NotImplementedByServerError as NotImplementedByServerError
    from .exceptions import PermissionDeniedError as PermissionDeniedError
    from .exceptions import ProgramError as ProgramError
    from .exceptions import PtyError as PtyError
    from .exceptions import QuotaExceededError as QuotaExceededError
    from .exceptions import RateLimitError as RateLimitError
    from .exceptions import SchedulingFailedError as SchedulingFailedError
    from .exceptions import ServiceUnavailableError as ServiceUnavailableError
    from .exceptions import SessionAlreadyExistsError as SessionAlreadyExistsError
    from .exceptions import SornaError as SornaError
    from .exceptions import StreamError as StreamError
    from .exceptions import StreamResumeError as StreamResumeError
    from .exceptions import UnsupportedAPIVersionError as UnsupportedAPIVersionError
    from .exceptions import UnsupportedOperationError as UnsupportedOperationError
    from .execute_stream import ExecuteStream as ExecuteStream
    from .execute_stream import SyncExecuteStream as SyncExecuteStream
    from .kernels import AsyncKernel as AsyncKernel
    from .kernels import Kernel as Kernel
    from .live import AsyncLiveRun as AsyncLiveRun
    from .live import InputRequest as InputRequest
    from .live import LiveEvent as LiveEvent
    from .live import LiveRun as LiveRun
    from .live import OutputEvent as OutputEvent
    from .live import ResultEvent as ResultEvent
    from .models import CompletionItem as CompletionItem
    from .models import Completions as Completions
    from .models import ConsoleItem as ConsoleItem
    from .models import DestroyResult as DestroyResult
    from .models import ExecutionResult as ExecutionResult
    from .models import FileEntry as FileEntry
    from .models import FileList as FileList
    from .models import KernelInfo as KernelInfo
    from .models import MediaItem as MediaItem
    from .models import ResultItem as ResultItem
    from .models import RunError as RunError
    from .models import SessionEvent as SessionEvent
    from .models import SessionInfo as SessionInfo
    from .models import SessionStatus as SessionStatus
    from .models import SornaKernelInfo as SornaKernelInfo
    from .models import TextItem as TextItem
    from .pty import StreamPty as StreamPty
    from .pty import SyncStreamPty as SyncStreamPty
    from .session import AsyncSession as AsyncSession
    from .session import Session as Session
    from .session import get_default_async_session as get_default_async_session
    from .session import get_default_session as get_default_session
    from .session import set_default_session as set_default_session

__all__ = [
    "APIConfig",
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "API_VERSION",
    "AsyncKernel",
    "AsyncLiveRun",
    "AsyncSession",
    "AuthenticationError",
    "BadRequestError",
    "CompletionItem",
    "Completions",
    "ConfigurationError",
    "ConsoleItem",
    "DestroyResult",
    "EventStream",
    "ExecuteStream",
    "ExecutionError",
    "ExecutionResult",
    "ExecutionTimeoutError",
    "FileEntry",
    "FileList",
    "ImageNotFoundError",
    "InputRequest",
    "InstanceNotAvailableError",
    "InstanceNotFoundError",
    "InsufficientPrivilegeError",
    "InternalServerError",
    "InvalidAPIParamsError",
    "InvalidArgumentError",
    "InvalidAuthParamsError",
    "InvalidKernelStatusError",
    "Kernel",
    "KernelBusyError",
    "KernelCreationFailedError",
    "KernelDestructionFailedError",
    "KernelExecutionFailedError",
    "KernelInfo",
    "KernelNotFoundError",
    "KernelRestartFailedError",
    "LiveEvent",
    "LiveRun",
    "MediaItem",
    "NotFoundError",
    "NotImplementedByServerError",
    "OutputEvent",
    "PermissionDeniedError",
    "ProgramError",
    "PtyError",
    "QuotaExceededError",
    "RateLimitError",
    "ResultEvent",
    "ResultItem",
    "RunError",
    "SchedulingFailedError",
    "ServiceUnavailableError",
    "Session",
    "SessionAlreadyExistsError",
    "SessionEvent",
    "SessionInfo",
    "SessionStatus",
    "SornaError",
    "SornaKernelInfo",
    "StreamError",
    "StreamPty",
    "StreamResumeError",
    "SyncEventStream",
    "SyncExecuteStream",
    "SyncStreamPty",
    "TextItem",
    "UnsupportedAPIVersionError",
    "UnsupportedOperationError",
    "__version__",
    "get_default_async_session",
    "get_default_session",
    "set_default_session",
]


#: Where each lazily imported name lives.
_LAZY = {
    "API_VERSION": "._constants",
    "APIConfig": ".config",
    "EventStream": ".events",
    "SyncEventStream": ".events",
    "APIConnectionError": ".exceptions",
    "APIResponseValidationError": ".exceptions",
    "APIStatusError": ".exceptions",
    "APITimeoutError": ".exceptions",
    "AuthenticationError": ".exceptions",
    "BadRequestError": ".exceptions",
    "ConfigurationError": ".exceptions",
    "ExecutionError": ".exceptions",
    "ExecutionTimeoutError": ".exceptions",
    "ImageNotFoundError": ".exceptions",
    "InstanceNotAvailableError": ".exceptions",
    "InstanceNotFoundError": ".exceptions",
    "InsufficientPrivilegeError": ".exceptions",
    "InternalServerError": ".exceptions",
    "InvalidAPIParamsError": ".exceptions",
    "InvalidArgumentError": ".exceptions",
    "InvalidAuthParamsError": ".exceptions",
    "InvalidKernelStatusError": ".exceptions",
    "KernelBusyError": ".exceptions",
    "KernelCreationFailedError": ".exceptions",
    "KernelDestructionFailedError": ".exceptions",
    "KernelExecutionFailedError": ".exceptions",
    "KernelNotFoundError": ".exceptions",
    "KernelRestartFailedError": ".exceptions",
    "NotFoundError": ".exceptions",
    "NotImplementedByServerError": ".exceptions",
    "PermissionDeniedError": ".exceptions",
    "ProgramError": ".exceptions",
    "PtyError": ".exceptions",
    "QuotaExceededError": ".exceptions",
    "RateLimitError": ".exceptions",
    "SchedulingFailedError": ".exceptions",
    "ServiceUnavailableError": ".exceptions",
    "SessionAlreadyExistsError": ".exceptions",
    "SornaError": ".exceptions",
    "StreamError": ".exceptions",
    "StreamResumeError": ".exceptions",
    "UnsupportedAPIVersionError": ".exceptions",
    "UnsupportedOperationError": ".exceptions",
    "ExecuteStream": ".execute_stream",
    "SyncExecuteStream": ".execute_stream",
    "AsyncKernel": ".kernels",
    "Kernel": ".kernels",
    "AsyncLiveRun": ".live",
    "InputRequest": ".live",
    "LiveEvent": ".live",
    "LiveRun": ".live",
    "OutputEvent": ".live",
    "ResultEvent": ".live",
    "Completions": ".models",
    "ConsoleItem": ".models",
    "TextItem": ".models",
    "ResultItem": ".models",
    "MediaItem": ".models",
    "CompletionItem": ".models",
    "DestroyResult": ".models",
    "ExecutionResult": ".models",
    "FileEntry": ".models",
    "FileList": ".models",
    "KernelInfo": ".models",
    "RunError": ".models",
    "SessionEvent": ".models",
    "SessionInfo": ".models",
    "SessionStatus": ".models",
    "SornaKernelInfo": ".models",
    "StreamPty": ".pty",
    "SyncStreamPty": ".pty",
    "AsyncSession": ".session",
    "Session": ".session",
    "get_default_async_session": ".session",
    "get_default_session": ".session",
    "set_default_session": ".session",
}


if not typing.TYPE_CHECKING:  # a module __getattr__ would hide typos from type checkers

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from importlib import import_module

        value = getattr(import_module(module, __name__), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(__all__))


del typing
