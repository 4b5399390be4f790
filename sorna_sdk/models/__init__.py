"""Pydantic models of every request, response and frame, for Sorna v2 and Backend.AI."""

from ._base import RequestModel as RequestModel
from ._base import SornaModel as SornaModel
from .execution import TERMINAL_STATUSES as TERMINAL_STATUSES
from .execution import BatchOptions as BatchOptions
from .execution import BatchOptionsDict as BatchOptionsDict
from .execution import BatchRequest as BatchRequest
from .execution import CompleteOptions as CompleteOptions
from .execution import CompleteOptionsDict as CompleteOptionsDict
from .execution import CompleteRequest as CompleteRequest
from .execution import CompletionItem as CompletionItem
from .execution import ConsoleItem as ConsoleItem
from .execution import ConsoleKind as ConsoleKind
from .execution import ExecMode as ExecMode
from .execution import ExecuteRequest as ExecuteRequest
from .execution import ExecutionResult as ExecutionResult
from .execution import ExecutionStatus as ExecutionStatus
from .execution import FigureFormat as FigureFormat
from .execution import MediaItem as MediaItem
from .execution import QueryOptions as QueryOptions
from .execution import QueryRequest as QueryRequest
from .execution import ResultFile as ResultFile
from .execution import ResultItem as ResultItem
from .execution import ResultOptions as ResultOptions
from .execution import RunError as RunError
from .execution import TextItem as TextItem
from .execution import TextKind as TextKind
from .execution import WireConsoleData as WireConsoleData
from .execution import console_item as console_item
from .kernel import AuthorizeResponse as AuthorizeResponse
from .kernel import CreateKernelRequest as CreateKernelRequest
from .kernel import DestroyResult as DestroyResult
from .kernel import HelloResponse as HelloResponse
from .kernel import KernelCreated as KernelCreated
from .kernel import KernelInfo as KernelInfo
from .kernel import Limits as Limits
from .kernel import SornaKernelInfo as SornaKernelInfo
from .problem import AgentDetails as AgentDetails
from .problem import ProblemDetails as ProblemDetails
from .pty import ClientFrame as ClientFrame
from .pty import OutFrame as OutFrame
from .pty import PingFrame as PingFrame
from .pty import ResizeFrame as ResizeFrame
from .pty import RestartFrame as RestartFrame
from .pty import ServerFrame as ServerFrame
from .pty import StdinFrame as StdinFrame
from .pty import decode_client_frame as decode_client_frame
from .pty import decode_server_frame as decode_server_frame
from .session import Completions as Completions
from .session import CreateStatus as CreateStatus
from .session import FileEntry as FileEntry
from .session import FileList as FileList
from .session import ResourceSlots as ResourceSlots
from .session import ServicePort as ServicePort
from .session import SessionCreated as SessionCreated
from .session import SessionEvent as SessionEvent
from .session import SessionInfo as SessionInfo
from .session import SessionStatus as SessionStatus
from .session import SessionType as SessionType

__all__ = [
    "AgentDetails",
    "AuthorizeResponse",
    "BatchOptions",
    "BatchOptionsDict",
    "BatchRequest",
    "ClientFrame",
    "CompleteOptions",
    "CompleteOptionsDict",
    "CompleteRequest",
    "CompletionItem",
    "Completions",
    "ConsoleItem",
    "ConsoleKind",
    "CreateKernelRequest",
    "CreateStatus",
    "DestroyResult",
    "ExecMode",
    "ExecuteRequest",
    "ExecutionResult",
    "ExecutionStatus",
    "FigureFormat",
    "FileEntry",
    "FileList",
    "HelloResponse",
    "KernelCreated",
    "KernelInfo",
    "Limits",
    "MediaItem",
    "OutFrame",
    "PingFrame",
    "ProblemDetails",
    "QueryOptions",
    "QueryRequest",
    "RequestModel",
    "ResizeFrame",
    "ResourceSlots",
    "RestartFrame",
    "ResultFile",
    "ResultItem",
    "ResultOptions",
    "RunError",
    "ServerFrame",
    "ServicePort",
    "SessionCreated",
    "SessionEvent",
    "SessionInfo",
    "SessionStatus",
    "SessionType",
    "SornaKernelInfo",
    "SornaModel",
    "StdinFrame",
    "TERMINAL_STATUSES",
    "TextItem",
    "TextKind",
    "WireConsoleData",
    "console_item",
    "decode_client_frame",
    "decode_server_frame",
]
