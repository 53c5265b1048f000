"""One pure-ASGI layer around every request: request id, access log line, metrics, and
a JSON 500 (logged with its traceback to error.log) for anything unexpected."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from files_api.logs import get_logger, redact_path
from files_api.metrics import Metrics

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class ObserveMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        state["request_id"] = request_id
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        failure: BaseException | None = None
        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            failure = exc
            status = 500
            if not response_started:
                body = json.dumps(
                    {"detail": f"Internal error; quote request id {request_id} when reporting"}
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"x-request-id", request_id.encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
        finally:
            duration = time.perf_counter() - started
            route = _route_of(scope)
            method = str(scope.get("method", ""))
            self.metrics.http_requests.labels(route=route, method=method, status=str(status)).inc()
            self.metrics.http_duration.labels(route=route).observe(duration)
            self._log(scope, state, method, route, status, duration, request_id, failure)

    @staticmethod
    def _log(
        scope: Scope,
        state: dict[str, object],
        method: str,
        route: str,
        status: int,
        duration: float,
        request_id: str,
        failure: BaseException | None,
    ) -> None:
        path = redact_path(str(scope.get("path", "")))
        detail = state.get("error_detail")
        msg = f"{method} {path} -> {status}"
        if failure is not None:
            msg += f": unhandled {type(failure).__name__}: {failure}"
        elif isinstance(detail, str) and status >= 400:
            msg += f": {detail}"
        errno = state.get("errno")
        user_id = state.get("user_id")
        get_logger().log(
            logging.ERROR if status >= 500 else logging.INFO,
            msg,
            exc_info=failure,
            extra={
                "fields": {
                    "method": method,
                    "path": path,
                    "route": route,
                    "status": status,
                    "duration_ms": round(duration * 1000, 2),
                    "request_id": request_id,
                    "user_id": user_id if isinstance(user_id, str) else None,
                    "errno": errno if isinstance(errno, str) else None,
                }
            },
        )
