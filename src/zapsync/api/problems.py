"""Errors as RFC 9457 problem details (`application/problem+json`) with a human reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from zapsync.services import errors
from zapsync.services.errors import Refusal, WebhookRefused

log = structlog.get_logger(__name__)

PROBLEM = "application/problem+json"
_PLAIN = (str, int, float, bool, type(None))


class ValidationIssue(BaseModel):
    """One reason a request was refused: where (`loc`) and what (`msg`)."""

    model_config = ConfigDict(extra="allow")

    type: str
    loc: list[str | int]
    msg: str


class ProblemDetails(BaseModel):
    """RFC 9457 problem details: every error this API answers."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[ValidationIssue] | None = Field(
        default=None, description="with 422: each field that was refused"
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry documenting these statuses as problem details."""
    return {s: {"model": ProblemDetails, "description": problem_description(s)} for s in statuses}


def problem_description(status: int) -> str:
    return _DESCRIPTIONS.get(status, "An error, with the reason")


_DESCRIPTIONS = {
    400: "The request could not be read",
    401: "No valid token: `Authorization: Bearer <token>`",
    403: "The token's role may not do this",
    404: "No such object in the token's organization",
    405: "The method is not allowed here",
    409: "In conflict with the object's state",
    410: "The object is gone",
    413: "The body is too large",
    415: "The body's content type is not one this route takes",
    422: "The request was refused, with the reason",
    429: "Too many requests",
    502: "The gateway failed or gave an unusable answer",
    503: "Not ready",
}


@dataclass(frozen=True, slots=True)
class Answer:
    """How one kind of refusal is answered over HTTP."""

    status: int
    title: str


# Every kind of service refusal and its answer; a subclass takes its nearest base's.
ANSWERS: dict[type[errors.ServiceError], Answer] = {
    errors.ServiceError: Answer(400, "Bad request"),
    errors.Malformed: Answer(400, "Bad request"),
    errors.Unauthorized: Answer(401, "Unauthorized"),
    errors.Forbidden: Answer(403, "Forbidden"),
    errors.NotFound: Answer(404, "Not found"),
    errors.Conflict: Answer(409, "Conflict"),
    errors.Gone: Answer(410, "Gone"),
    errors.TooLarge: Answer(413, "Payload too large"),
    errors.UnsupportedMedia: Answer(415, "Unsupported media type"),
    errors.Invalid: Answer(422, "Unprocessable entity"),
    errors.TooMany: Answer(429, "Too many requests"),
}

# A refused webhook is answered by why it was refused.
_UNAUTHORIZED = ANSWERS[errors.Unauthorized]
WEBHOOK_ANSWERS: dict[Refusal, Answer] = {
    Refusal.UNKNOWN_SESSION: _UNAUTHORIZED,
    Refusal.UNKNOWN_INTEGRATION: _UNAUTHORIZED,
    Refusal.WRONG_SECRET: _UNAUTHORIZED,
    Refusal.BAD_SIGNATURE: _UNAUTHORIZED,
    Refusal.EXPIRED_SIGNATURE: _UNAUTHORIZED,
    Refusal.ARCHIVED: ANSWERS[errors.Gone],
    Refusal.MALFORMED: Answer(400, "Malformed webhook"),
    Refusal.TOO_LARGE: ANSWERS[errors.TooLarge],
    Refusal.RATE_LIMITED: ANSWERS[errors.TooMany],
}


def answer_to(exc: errors.ServiceError) -> Answer:
    if isinstance(exc, WebhookRefused):
        return WEBHOOK_ANSWERS[exc.refusal]
    for kind in type(exc).__mro__:
        if kind in ANSWERS:
            return ANSWERS[kind]
    raise AssertionError("ServiceError is in ANSWERS")  # pragma: no cover


def retry_headers(exc: errors.ServiceError) -> dict[str, str]:
    retry_after = getattr(exc, "retry_after", None)
    return {} if retry_after is None else {"Retry-After": str(retry_after)}


def problem(
    status: int,
    title: str,
    detail: str,
    request: Request | None = None,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
        rid = getattr(request.state, "request_id", None)
        if rid:
            body["request_id"] = rid
    body.update(extra)
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _issues(exc: RequestValidationError) -> list[dict[str, Any]]:
    """The errors as plain JSON. The refused input is left out: it may be bytes, an object
    that has no JSON form, or a credential the caller sent in a config."""
    issues = []
    for err in exc.errors()[:20]:
        issue: dict[str, Any] = {
            "type": str(err.get("type", "invalid")),
            "loc": [p if isinstance(p, int) else str(p) for p in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
        }
        ctx = err.get("ctx")
        if isinstance(ctx, dict):
            issue["ctx"] = {str(k): v if isinstance(v, _PLAIN) else str(v) for k, v in ctx.items()}
        issues.append(issue)
    return issues


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        if err.get("type") == "json_invalid":
            return f"the body is not valid JSON: {err.get('ctx', {}).get('error', err['msg'])}"
        parts.append(f"{loc}: {err['msg']}" if loc else err["msg"])
    return "; ".join(parts)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.ServiceError)
    async def _service(request: Request, exc: errors.ServiceError) -> JSONResponse:
        answer = answer_to(exc)
        log.info("request refused", status=answer.status, reason=exc.detail)
        return problem(answer.status, answer.title, exc.detail, request, headers=retry_headers(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = _describe_validation(exc)
        log.info("invalid request", reason=detail)
        return problem(422, "Unprocessable entity", detail, request, errors=_issues(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed", 401: "Unauthorized"}
        return problem(
            exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail), request
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem(500, "Internal server error", "an unexpected error occurred", request)
