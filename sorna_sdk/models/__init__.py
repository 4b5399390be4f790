"""Pydantic models of every request, response and frame of the Sorna v2 API."""

from ._base import RequestModel as RequestModel
from ._base import SornaModel as SornaModel
from .execution import BatchOptions as BatchOptions
from .execution import BatchRequest as BatchRequest
from .execution import CompleteOptions as CompleteOptions
from .execution import CompleteRequest as CompleteRequest
from .execution import ConsoleItem as ConsoleItem
from .execution import ConsoleKind as ConsoleKind
from .execution import ExecMode as ExecMode
from .execution import ExecuteRequest as ExecuteRequest
from .execution import ExecutionResult as ExecutionResult
from .execution import ExecutionStatus as ExecutionStatus
from .execution import QueryRequest as QueryRequest
from .kernel import AuthorizeResponse as AuthorizeResponse
from .kernel import CreateKernelRequest as CreateKernelRequest
from .kernel import HelloResponse as HelloResponse
from .kernel import KernelCreated as KernelCreated
from .kernel import KernelInfo as KernelInfo
from .kernel import Limits as Limits
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

__all__ = [
    "AgentDetails",
    "AuthorizeResponse",
    "BatchOptions",
    "BatchRequest",
    "ClientFrame",
    "CompleteOptions",
    "CompleteRequest",
    "ConsoleItem",
    "ConsoleKind",
    "CreateKernelRequest",
    "ExecMode",
    "ExecuteRequest",
    "ExecutionResult",
    "ExecutionStatus",
    "HelloResponse",
    "KernelCreated",
    "KernelInfo",
    "Limits",
    "OutFrame",
    "PingFrame",
    "ProblemDetails",
    "QueryRequest",
    "RequestModel",
    "ResizeFrame",
    "RestartFrame",
    "ServerFrame",
    "SornaModel",
    "StdinFrame",
    "decode_client_frame",
    "decode_server_frame",
]
