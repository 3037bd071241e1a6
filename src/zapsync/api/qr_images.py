"""QR codes rendered with segno: a PNG data URL for JSON, or the image itself."""

from __future__ import annotations

import io

import segno


def png_bytes(code: str, scale: int = 6) -> bytes:
    buf = io.BytesIO()
    segno.make(code, error="l").save(buf, kind="png", scale=scale, border=2)
    return buf.getvalue()


def svg_text(code: str, scale: int = 6) -> str:
    buf = io.BytesIO()
    segno.make(code, error="l").save(buf, kind="svg", scale=scale, border=2, xmldecl=False)
    return buf.getvalue().decode()


def png_data_url(code: str) -> str:
    qr = segno.make(code, error="l")
    return str(qr.png_data_uri(scale=6, border=2))
