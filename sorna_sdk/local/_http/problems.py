"""Errors the HTTP layer answers, rendered as problem+json in each request's dialect."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ..._problems import Problem, by_name
from .._runtime.errors import GatewayProblem
from .wire import WireDialect

__all__ = ["HttpProblem", "auth_problem", "params_problem", "problem_response"]


class HttpProblem(Exception):
    """A client-visible error raised by the HTTP layer itself.

    ``problem`` names an entry of ``sorna_sdk._problems``; ``detail`` says what was wrong;
    ``title`` replaces the whole Sorna title when given; ``status`` overrides the table's;
    ``data`` is Backend.AI's machine-readable detail.
    """

    def __init__(
        self,
        problem: str,
        detail: str | None = None,
        *,
        title: str | None = None,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(title or detail or problem)
        self.problem: Problem = by_name(problem)
        self.detail = detail
        self.title = title
        self.status = status
        self.headers: dict[str, str] = dict(headers or {})
        #: Backend.AI's ``data`` member (e.g. ``existingSessionId``); Sorna has none.
        self.data: dict[str, Any] | None = dict(data) if data is not None else None


def auth_problem(detail: str) -> HttpProblem:
    """400 invalid-auth-params with a detail, as both servers word it."""
    return HttpProblem("invalid-auth-params", detail)


def params_problem(detail: str) -> HttpProblem:
    """400 invalid-api-params with a detail."""
    return HttpProblem("invalid-api-params", detail)


def problem_response(dialect: WireDialect, error: HttpProblem | GatewayProblem) -> web.Response:
    """The problem+json answer of an error, in ``dialect``."""
    problem: Problem
    detail: str | None
    title: str | None
    status: int | None
    data: dict[str, Any] | None = None
    if isinstance(error, GatewayProblem):
        problem, detail, title, status = by_name(error.problem), None, error.title, None
        headers: dict[str, str] = {}
    else:
        problem, detail, title, status = error.problem, error.detail, error.title, error.status
        headers, data = error.headers, error.data
    body = dialect.problem_body(problem, detail, title, data)
    response = web.Response(
        body=json.dumps(body).encode(),
        status=status or dialect.spelling(problem).status,
        content_type="application/problem+json",
        charset="utf-8",
    )
    response.headers.update(headers)
    return response
