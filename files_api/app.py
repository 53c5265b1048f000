"""The FastAPI application: routers, error handling, /health, /metrics, lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from files_api import routes_admin, routes_files, routes_shares
from files_api.auth import services_of
from files_api.config import Settings
from files_api.errors import ServiceError
from files_api.metrics import CONTENT_TYPE
from files_api.middleware import ObserveMiddleware
from files_api.models import CheckOut, HealthOut
from files_api.services import Services


def create_app(settings: Settings) -> FastAPI:
    services = Services(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await services.start()
        try:
            yield
        finally:
            await services.stop()

    app = FastAPI(
        title="Files API",
        version=settings.release,
        summary="The Files service twin: uploads, downloads, share links, admin operations.",
        lifespan=lifespan,
    )
    app.state.services = services
    app.add_middleware(ObserveMiddleware, metrics=services.metrics)
    app.add_exception_handler(ServiceError, _service_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_api_route(
        "/health",
        health,
        methods=["GET"],
        response_model=HealthOut,
        response_model_exclude_none=True,
        tags=["system"],
        summary="Database, storage and cache checked concurrently (200 ok / 503 fail)",
        responses={503: {"model": HealthOut, "description": "A dependency failed"}},
    )
    app.add_api_route(
        "/metrics",
        metrics,
        methods=["GET"],
        tags=["system"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    )
    # after /health and /metrics: a request is matched against the routes in order, and
    # the probes and scrapes are the most frequent (no path of the routers overlaps them)
    app.include_router(routes_files.router)
    app.include_router(routes_shares.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_admin.public_router)
    return app


async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
    request.state.errno = exc.errno
    request.state.error_detail = exc.detail if exc.note is None else f"{exc.detail} ({exc.note})"
    headers: dict[str, str] = {}
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if exc.status_code == 503:
        headers["Retry-After"] = "1"
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with where and what, without echoing the input: FastAPI's default echoes it,
    and an input JSON cannot carry back (1e400 parses as inf) made the answer a 500."""
    detail = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type"))}
        for e in exc.errors()
    ]
    request.state.error_detail = "; ".join(
        f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in detail
    )
    return JSONResponse({"detail": detail}, status_code=422)


async def health(request: Request) -> Response:
    services = services_of(request)
    results = await services.health.run()
    failed = [name for name, result in results.items() if not result.ok]
    body = HealthOut(
        status="fail" if failed else "ok",
        release=services.settings.release,
        failed=failed,
        checks={
            name: CheckOut(ok=r.ok, latency_ms=r.latency_ms, error=r.error)
            for name, r in results.items()
        },
    )
    if failed:
        request.state.error_detail = "; ".join(f"{n}: {results[n].error}" for n in failed)
        request.state.errno = next((results[n].errno for n in failed if results[n].errno), None)
    return Response(  # pydantic writes the JSON bytes (no dict, no json.dumps)
        body.model_dump_json(exclude_none=True),
        status_code=503 if failed else 200,
        media_type="application/json",
    )


async def metrics(request: Request) -> Response:
    return Response(services_of(request).metrics.render(), media_type=CONTENT_TYPE)
