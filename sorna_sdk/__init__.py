"""sorna_sdk: a typed client for the Sorna code-execution API and Backend.AI clusters.

>>> from sorna_sdk import Kernel
>>> kern = Kernel.get_or_create('lua5', client_token='abc-session')  # doctest: +SKIP
>>> kern.execute('print("hello world")', mode='query')['console']  # doctest: +SKIP
[['stdout', 'hello world\\n']]
"""

from ._constants import API_VERSION as API_VERSION
from ._version import __version__ as __version__
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
from .models import Completions as Completions
from .models import ConsoleItem as ConsoleItem
from .models import DestroyResult as DestroyResult
from .models import ExecutionResult as ExecutionResult
from .models import FileEntry as FileEntry
from .models import FileList as FileList
from .models import KernelInfo as KernelInfo
from .models import RunError as RunError
from .models import SessionEvent as SessionEvent
from .models import SessionInfo as SessionInfo
from .models import SessionStatus as SessionStatus
from .models import SornaKernelInfo as SornaKernelInfo
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
    "NotFoundError",
    "NotImplementedByServerError",
    "OutputEvent",
    "PermissionDeniedError",
    "ProgramError",
    "PtyError",
    "QuotaExceededError",
    "RateLimitError",
    "ResultEvent",
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
    "UnsupportedAPIVersionError",
    "UnsupportedOperationError",
    "__version__",
    "get_default_async_session",
    "get_default_session",
    "set_default_session",
]
