"""An API Gateway HTTP API, locally: routes, the JWT authorizer, and a Lambda function
behind them (payload format 2.0), on a local port.

A route named ``public`` has no authorizer (the review page: it signs the person in).
As API Gateway does: a request matching no route gets 404 ``{"message":"Not Found"}``, one
the authorizer refuses 401 ``{"message":"Unauthorized"}`` (the function never runs), a
function that fails 500 ``{"message":"Internal Server Error"}``, one that outlives the
integration timeout 503.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from concurrent.futures import TimeoutError as FutureTimeout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .authorizer import JwtAuthorizer, Unauthorized, gateway_claims
from .lambda_pool import LambdaPool
from .ports import ensure_free

INTEGRATION_TIMEOUT_S = 30.0  # API Gateway's limit for a Lambda integration


class Routes:
    """``"METHOD /path/{param}"`` route keys, matched as API Gateway matches them."""

    def __init__(self, route_keys: tuple[str, ...]) -> None:
        self._routes = []
        for key in route_keys:
            method, path = key.split(" ", 1)
            pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
            self._routes.append((key, method, re.compile(pattern + "$")))

    def match(self, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        for key, route_method, pattern in self._routes:
            found = pattern.match(path)
            if found and route_method == method:
                return key, found.groupdict()
        return None


def gateway_event(
    *,
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    route_key: str = "$default",
    path_parameters: dict[str, str] | None = None,
    claims: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The event an HTTP API hands a Lambda integration (payload format 2.0)."""
    url = urlsplit(target)
    headers = {name.lower(): value for name, value in headers.items()}
    query: dict[str, str] = {}
    for name, value in parse_qsl(url.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value  # as API Gateway
    try:
        text, encoded = body.decode(), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": url.path,
        "rawQueryString": url.query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": headers.get("host", "localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": url.path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        event["body"] = text
    if claims is not None:
        event["requestContext"]["authorizer"] = {
            "jwt": {"claims": gateway_claims(claims), "scopes": None}
        }
    return event


def gateway_response(result: Any) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body API Gateway makes of a function's answer (format 2.0)."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # Anything else is taken as a JSON body with status 200.
        return 200, {"Content-Type": "application/json"}, json.dumps(result).encode()
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    headers = dict(result.get("headers") or {})
    if result.get("cookies"):
        headers["Set-Cookie"] = "; ".join(result["cookies"])
    return int(result["statusCode"]), headers, data


class HttpApi:
    """Routes behind a JWT authorizer (but the ``public`` ones, which take no token),
    integrated with a function in worker processes."""

    def __init__(
        self,
        *,
        routes: tuple[str, ...],
        public: tuple[str, ...] = (),
        authorizer: JwtAuthorizer,
        function: LambdaPool,
        host: str = "127.0.0.1",
        port: int = 8087,
    ) -> None:
        self.routes = Routes(routes + public)
        self.public = frozenset(public)
        self.authorizer = authorizer
        self.function = function
        self.host = host
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Serve now; the function's workers warm up meanwhile (``function.wait_warm``)."""
        ensure_free(self.host, self.port, "--review-port")
        self.function.warm()
        api = self

        class Handler(_RequestHandler):
            http_api = api

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="bincheck-review-api", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.function.stop()

    def answer(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        route = self.routes.match(method, urlsplit(target).path)
        if route is None:
            return _message(404, "Not Found")
        try:
            lowered = {name.lower(): value for name, value in headers.items()}
            claims = (
                None
                if route[0] in self.public
                else self.authorizer.verify(lowered.get("authorization"))
            )
        except Unauthorized as refusal:
            status, extra, data = _message(401, "Unauthorized")
            reason = str(refusal).replace('"', "'")
            extra["www-authenticate"] = (
                f'Bearer scope="" error="invalid_token" error_description="{reason}"'
            )
            return status, extra, data
        event = gateway_event(
            method=method,
            target=target,
            headers=headers,
            body=body,
            route_key=route[0],
            path_parameters=route[1],
            claims=claims,
        )
        try:
            result = self.function.invoke(event, timeout_s=INTEGRATION_TIMEOUT_S)
        except FutureTimeout:
            return _message(503, "Service Unavailable")
        except Exception:  # the function failed: its log says why
            return _message(500, "Internal Server Error")
        return gateway_response(result)


def _message(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps({"message": message}).encode()


class _RequestHandler(BaseHTTPRequestHandler):
    http_api: HttpApi
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, data = self.http_api.answer(
            self.command, self.path, dict(self.headers.items()), body
        )
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the function's log is the record of requests
