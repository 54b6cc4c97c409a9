"""The HTTP API and the operators' console, in one FastAPI app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

from api import auth, cases, docs, guides, incidents, models, monitor, ptz, public, users, verifications, zones
from api.deps import ApiContext

STATIC = Path(__file__).with_name("static")
MAX_BODY = 1 << 20  # 1 MiB: verdicts, callbacks and logins are small
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


class Hardening(BaseHTTPMiddleware):
    """Refuses oversized bodies before reading them; adds security headers to every answer."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return JSONResponse({"detail": f"request body larger than {MAX_BODY} bytes"}, status_code=413)
        if length is None and request.headers.get("transfer-encoding", "").lower() == "chunked":
            return JSONResponse({"detail": "chunked request bodies are not accepted"}, status_code=411)
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="GridSight",
        version="0.1.0",
        description="Video channel of the grid-management platform: cameras, incidents, review, cases, evidence.",
        docs_url=None,  # api/docs.py serves it from local assets
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.add_middleware(Hardening)
    for module in (auth, monitor, ptz, incidents, cases, models, public, guides, zones, users, verifications):
        app.include_router(module.router)
    app.include_router(monitor.ops)
    docs.mount(app)
    if (STATIC / "index.html").is_file():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

        @app.get("/", include_in_schema=False)
        def console() -> FileResponse:
            return FileResponse(STATIC / "index.html")

    return app
