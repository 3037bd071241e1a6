"""The OpenAPI document.

Every error answer is documented as problem details (`application/problem+json`): the ones a
route declares, and those every route of its kind can give (401 and 403 by role, 404 with a
path id, 409 for a change, 415 and 422 with a body or parameters)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from zapsync.api.problems import PROBLEM, ProblemDetails, problem_description
from zapsync.api.routing import ROLE_KEY, Role

_REF_TEMPLATE = "#/components/schemas/{model}"
_PROBLEM_REF = {"$ref": _REF_TEMPLATE.format(model="ProblemDetails")}
_METHODS = {"get", "post", "put", "patch", "delete"}
# The schemas of answers that are not JSON: a file or image, and text (SVG, metrics).
BINARY: dict[str, Any] = {"type": "string", "format": "binary"}
TEXT: dict[str, Any] = {"type": "string"}


def _implied_statuses(method: str, path: str, operation: dict[str, Any]) -> list[int]:
    statuses = []
    role = operation.get(ROLE_KEY)
    if role is not None:
        statuses.append(401)
    if role == Role.ADMIN.value:
        statuses.append(403)
    if "{" in path:
        statuses.append(404)
    if role is not None and method != "get":
        statuses.append(409)  # a change can conflict with the object's state (archived, …)
    if "requestBody" in operation:
        statuses.append(415)
    if operation.get("parameters") or "requestBody" in operation:
        statuses.append(422)
    return statuses


def document_problems(schema: dict[str, Any]) -> None:
    """Every 4xx/5xx answer of every operation as problem details, in place."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = ProblemDetails.model_json_schema(ref_template=_REF_TEMPLATE)
    components.update(problem_schema.pop("$defs", {}))
    components["ProblemDetails"] = problem_schema
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status in _implied_statuses(method, path, operation):
                responses.setdefault(str(status), {})
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400 and _is_problem(response):
                    given = response.get("description")
                    if not given or given in _GENERIC:
                        response["description"] = problem_description(int(status))
                    response["content"] = {PROBLEM: {"schema": _PROBLEM_REF}}


# FastAPI's own 422 model is replaced: this API answers problem details there too.
_PROBLEM_MODELS = ("/ProblemDetails", "/HTTPValidationError")
_GENERIC = {"Additional Response", "Validation Error", "Successful Response"}


def _is_problem(response: dict[str, Any]) -> bool:
    """An error answer with no body of its own declared, or declared as problem details."""
    schemas = [c.get("schema", {}) for c in response.get("content", {}).values()]
    return all(not s or s.get("$ref", "").endswith(_PROBLEM_MODELS) for s in schemas)


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                separate_input_output_schemas=app.separate_input_output_schemas,
            )
            document_problems(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
