"""A web server with files for gateways to fetch, as a CDN or a customer's site would be."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI, Response

from tests.support.servers import serve_in_thread

PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
NOT_AN_IMAGE = b"<html><body>404 - this page moved</body></html>"


@contextmanager
def media_host() -> Iterator[str]:
    """Serves `/photo.png` (a PNG) and `/broken.jpg` (an HTML page named like a JPEG)."""
    app = FastAPI()

    @app.get("/photo.png")
    async def photo() -> Response:
        return Response(PNG, media_type="image/png")

    @app.get("/broken.jpg")
    async def broken() -> Response:
        return Response(NOT_AN_IMAGE, media_type="image/jpeg")

    with serve_in_thread(app) as url:
        yield url
