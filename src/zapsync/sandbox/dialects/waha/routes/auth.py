"""`/api/{session}/auth/...`: the QR to scan (PNG, base64 JSON or raw) and pairing codes."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import segno
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from zapsync.sandbox.dialects.waha.dialect import Dialect
from zapsync.sandbox.dialects.waha.http import WahaRoute, json_body, nest_error

router = APIRouter(route_class=WahaRoute)


def qr_png(code: str) -> bytes:
    return base64.b64decode(segno.make(code, error="m").png_data_uri(scale=4).split(",", 1)[1])


@router.get("/{name}/auth/qr")
async def get_qr(name: str, request: Request, waha: Dialect) -> Response:
    inst = waha.running(name, "SCAN_QR_CODE")
    code = inst.qr_code or ""
    if request.query_params.get("format") == "raw":
        return JSONResponse({"value": code})
    png = qr_png(code)
    if "application/json" in request.headers.get("accept", ""):
        data = base64.b64encode(png).decode()
        return JSONResponse({"mimetype": "image/png", "data": data})
    return Response(png, media_type="image/png")


@router.post("/{name}/auth/request-code", status_code=201)
async def request_code(name: str, request: Request, waha: Dialect) -> dict[str, Any]:
    waha.running(name, "SCAN_QR_CODE")
    body = await json_body(request)
    if not body.get("phoneNumber"):
        raise nest_error(400, "phoneNumber should not be empty")
    code = secrets.token_hex(4).upper()
    return {"code": f"{code[:4]}-{code[4:]}"}
