"""curl steps, sent as HTTP requests to the stack (never anywhere else).

The curl line is parsed (`parse_curl`), its placeholders bound, its URL's host mapped
through `bindings.hosts` (a host that is not part of the stack is refused before any
traffic), and the request sent with httpx under a timeout. The result is what curl would
have produced: exit code (0 for any HTTP status, as curl without -f; 7 refused; 28
timed out; 22 with -f and a status >= 400), the body (or headers with -I/-i) as output,
the `-w` format rendered from measured timings, and the `-v` trace as stderr.
"""

from __future__ import annotations

import json
import mimetypes
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

from runbook_checks.errors import UsageError
from runbook_checks.runbook.model import Step
from runbook_checks.steps.base import (
    ExecContext,
    JsonValue,
    Refused,
    StepResult,
    StepStatus,
    excerpt,
    unbound_result,
)
from runbook_checks.steps.binding import Bindings, bind
from runbook_checks.steps.curl import (
    CurlRequest,
    FormField,
    TransferInfo,
    format_from_file,
    parse_curl,
    render_write_out,
)
from runbook_checks.steps.reach import is_loopback
from runbook_checks.tls import tls_context

__all__ = ["CurlRequest", "FormField", "parse_curl", "resolve_url", "run_http"]

USER_AGENT = "curl/8.5.0 (runbook-checks)"
MAX_REDIRECTS = 50
CURL_HELP = "curl: try 'curl --help' or 'curl --manual' for more information"


# -- host mapping -----------------------------------------------------------------------


def _with_scheme(url: str) -> str:
    return url if "://" in url else f"http://{url}"


def resolve_url(url: str, bindings: Bindings, stack_urls: Iterable[str] = ()) -> tuple[str, str]:
    """The URL to send to, and a note on how it was mapped.

    The host (host:port first, then host) is looked up in `bindings.hosts`; a URL that
    already points at one of `stack_urls` is kept, and so is one whose host is an
    in-process edge (`bindings.edges`: `_send` hands it to that transport). Anything
    else, and any mapping that leads to a host neither on loopback nor allowed by the
    profile (`bindings.reach`), raises `Refused`.
    """
    parts = urlsplit(_with_scheme(url))
    netloc = parts.netloc.rsplit("@", 1)[-1]
    host = parts.hostname or ""
    keys = [netloc, host] if parts.port is not None else [host]
    if any(key in bindings.edges for key in keys):
        return urlunsplit(parts), f"{parts.scheme}://{netloc} -> an in-process stand-in"
    base: str | None = None
    for key in keys:
        if key in bindings.hosts:
            base = bindings.hosts[key]
            break
    if base is None:
        own = {urlsplit(u).netloc for u in stack_urls}
        if not is_loopback(host):  # a host beyond loopback: only one the profile allows
            refused = bindings.reach.refusal(host, "curl")
            if refused is not None:
                raise Refused(refused)
            return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), ""
        if netloc in own:  # on loopback, only the stack's own URLs
            return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), ""
        raise Refused(
            f"refused: host {netloc} is not part of the stack",
            hint="map it in bindings.hosts (mapped: "
            + (", ".join(sorted(bindings.hosts)) or "none")
            + ")",
        )
    target = urlsplit(_with_scheme(base))
    refused = bindings.reach.refusal(target.hostname or "", f"curl ({netloc} ->)")
    if refused is not None:
        raise Refused(refused)
    path = target.path.rstrip("/") + (parts.path or "/")
    mapped = urlunsplit((target.scheme, target.netloc, path, parts.query, ""))
    return mapped, f"{parts.scheme}://{netloc} -> {target.scheme}://{target.netloc}"


def _stack_urls(ctx: ExecContext) -> list[str]:
    endpoints = ctx.stack.endpoints
    urls = [endpoints.api_url, endpoints.s3_endpoint, endpoints.aws_endpoint]
    return [*urls, endpoints.api_instance_url] if endpoints.api_instance_url else urls


def resolve_file(name: str, bindings: Bindings, folder: Path) -> Path | None:
    """A file the command names (`test.txt`, `@curl-format.txt`): bound, else in `folder`."""
    if name in bindings.files:
        return bindings.files[name]
    base = Path(name).name
    if base in bindings.files:
        return bindings.files[base]
    candidate = folder / name
    if not Path(name).is_absolute() and candidate.is_file():
        return candidate
    return None


# -- the executor -----------------------------------------------------------------------


@dataclass
class _Run:
    """Mutable state of one emulated curl run."""

    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    exit_code: int = 0
    error: str = ""

    def fail(self, code: int, message: str) -> None:
        self.exit_code = code
        self.error = message
        self.stderr.append(message)


def run_http(step: Step, ctx: ExecContext) -> StepResult:
    bound = bind(step.text, ctx.bindings)
    try:
        request = parse_curl(bound.text)
    except UsageError as exc:
        return StepResult(
            step=step,
            status=StepStatus.FAILED,
            executed=ctx.redact(bound.text),
            exit_code=2,
            error=exc.message,
            stderr=exc.message,
            bound_placeholders=bound.bound,
            unbound=bound.unbound,
        )
    if bound.unbound:
        return unbound_result(step, bound, ctx.redact(bound.text))
    base = StepResult(
        step=step,
        status=StepStatus.ERROR,
        executed=ctx.redact(bound.text),
        bound_placeholders=bound.bound,
    )
    if step.pipeline:
        return replace(
            base, error="a pipe after curl (| " + " | ".join(step.pipeline) + ") is not emulated"
        )
    if request.unknown:
        message = f"curl: option {request.unknown[0]}: is unknown\n{CURL_HELP}"
        return replace(base, status=StepStatus.FAILED, exit_code=2, error=message, stderr=message)
    if request.unsupported:
        return replace(
            base,
            error="curl option(s) not emulated (they would reach "
            f"outside the stack or need unmapped files): {', '.join(request.unsupported)}",
        )
    try:
        url, mapping = resolve_url(request.url, ctx.bindings, _stack_urls(ctx))
    except Refused as exc:
        return replace(base, error=exc.message, suggestion=exc.hint or "")
    argv = [url if a == request.url else a for a in request.argv]
    executed = ctx.redact(shlex.join(argv))
    run = _Run()
    if mapping:
        run.notes.append(f"host mapped: {mapping}")
    if step.host:
        run.notes.append(f"ran locally against the stack (the runbook runs it on {step.host})")
    for option in request.ignored:
        run.notes.append(f"curl option --{option} has no effect here")

    data = _send(request, url, ctx, run)
    status = StepStatus.OK if run.exit_code == 0 else StepStatus.FAILED
    return replace(
        base,
        status=status,
        executed=executed,
        exit_code=run.exit_code,
        output=ctx.redact(excerpt("".join(run.stdout))),
        stderr=ctx.redact(excerpt("".join(run.stderr))),
        http_status=data.status if data else None,
        data=data.json if data else None,
        error=ctx.redact(run.error),
        notes=tuple(run.notes),
    )


@dataclass(frozen=True)
class _Response:
    status: int
    json: JsonValue


def _write_out_format(request: CurlRequest, ctx: ExecContext, run: _Run) -> str | None:
    """The -w format text; None when reading a `@file` failed (curl stops there)."""
    fmt = request.write_out
    if fmt is None or not fmt.startswith("@"):
        return fmt
    name = fmt[1:]
    if name == "-":
        run.notes.append("-w @- (format from stdin): no stdin here, empty format")
        return ""
    path = resolve_file(name, ctx.bindings, ctx.folder)
    if path is None or not path.is_file():
        run.fail(
            26,
            f"curl: Failed to open {name}\n"
            "curl: option -w: error encountered when reading a file\n" + CURL_HELP,
        )
        run.notes.append(
            f"the write-out format file {name} does not exist (curl before 8.0 "
            f"only warned 'Failed to read {name}' and sent the request)"
        )
        return None
    run.notes.append(f"{name} -> {path}")
    return format_from_file(path.read_text(errors="replace"))


_FilePart = tuple[str, tuple[str | None, bytes, str]]


@dataclass(frozen=True)
class _Body:
    content: bytes | None = None
    files: list[_FilePart] | None = None
    data: dict[str, str] | None = None


def _body(request: CurlRequest, ctx: ExecContext, run: _Run) -> _Body | None:
    """httpx keyword arguments for the request body; None when a file is missing."""
    if request.form:
        files: list[_FilePart] = []
        fields: dict[str, str] = {}
        for part in request.form:
            if part.is_file or part.from_file:
                path = resolve_file(part.value, ctx.bindings, ctx.folder)
                if path is None or not path.is_file():
                    run.fail(26, "curl: (26) Failed to open/read local data from file/application")
                    run.notes.append(
                        f"-F {part.name}=@{part.value}: no such file is bound (bindings.files)"
                    )
                    return None
                run.notes.append(f"{part.value} -> {path}")
                content = path.read_bytes()
                if part.from_file:
                    fields[part.name] = content.decode(errors="replace")
                    continue
                filename = part.filename or Path(part.value).name
                ctype = (
                    part.content_type
                    or mimetypes.guess_type(filename)[0]
                    or "application/octet-stream"
                )
                files.append((part.name, (filename, content, ctype)))
            else:
                fields[part.name] = part.value
        if files:
            return _Body(files=files, data=fields)
        # curl sends multipart even without files
        return _Body(files=[(k, (None, v.encode(), "text/plain")) for k, v in fields.items()])
    if request.data:
        chunks: list[bytes] = []
        for option, item in zip(request.data_options, request.data, strict=True):
            if item.startswith("@") and option not in ("--data-raw",):
                path = resolve_file(item[1:], ctx.bindings, ctx.folder)
                if path is None or not path.is_file():
                    run.stderr.append(
                        f'Warning: Couldn\'t read data from file "{item[1:]}", '
                        "this makes an empty POST.\n"
                    )
                    chunks.append(b"")
                    continue
                content = path.read_bytes()
                if option != "--data-binary":
                    content = content.replace(b"\r", b"").replace(b"\n", b"")
                chunks.append(content)
            elif option == "--data-urlencode":
                from urllib.parse import quote

                name, sep, value = item.partition("=")
                chunks.append((f"{name}={quote(value)}" if sep else quote(item)).encode())
            else:
                chunks.append(item.encode())
        return _Body(content=b"&".join(chunks))
    return _Body()


def _send(request: CurlRequest, url: str, ctx: ExecContext, run: _Run) -> _Response | None:
    import httpx

    fmt = _write_out_format(request, ctx, run)
    if request.write_out is not None and fmt is None:
        return None
    body = _body(request, ctx, run)
    if body is None:
        return None
    headers: list[tuple[str, str]] = [("User-Agent", USER_AGENT), ("Accept", "*/*")]
    if request.data and not request.form and request.header("Content-Type") is None:
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    overridden = {k.lower() for k, _ in request.headers}
    headers = [(k, v) for k, v in headers if k.lower() not in overridden]
    headers += [(k, v) for k, v in request.headers if v]  # "-H 'X:'" removes a header in curl
    if request.user is not None:
        import base64

        token = base64.b64encode(request.user.encode()).decode()
        headers.append(("Authorization", f"Basic {token}"))
    method = request.method
    if request.get and body.content is not None:
        url += ("&" if "?" in url else "?") + body.content.decode()
        body = _Body()

    limit = ctx.timeout_s
    if request.max_time is not None:
        if request.max_time > ctx.timeout_s:
            run.notes.append(
                f"--max-time {request.max_time:g} capped to the step timeout {ctx.timeout_s:g}s"
            )
        limit = min(limit, request.max_time)
    connect_limit = min(limit, request.connect_timeout or limit)
    clock = ctx.clock
    info = TransferInfo(method=method)
    marks: dict[str, float] = {}

    def trace(name: str, _info: object) -> None:
        marks.setdefault(name, clock.monotonic())

    redirects = 0
    time_redirect = 0.0
    response_json: JsonValue = None
    status = 0
    received = 0
    # outside hosts a scenario answers in-process: their requests never reach a network
    mounts = {f"all://{host}": transport for host, transport in ctx.bindings.edges.items()}
    with httpx.Client(
        trust_env=False, follow_redirects=False, mounts=mounts, verify=tls_context()
    ) as client:
        client.headers.pop("Accept-Encoding", None)
        client.headers.pop("User-Agent", None)
        client.headers.pop("Accept", None)
        start = clock.monotonic()
        deadline = start + limit
        while True:
            marks.clear()
            hop_start = clock.monotonic()
            remaining = max(deadline - hop_start, 0.001)
            timeout = httpx.Timeout(remaining, connect=min(connect_limit, remaining))
            try:
                built = client.build_request(
                    method,
                    url,
                    headers=headers,
                    timeout=timeout,
                    extensions={"trace": trace},
                    content=body.content,
                    files=body.files,
                    data=body.data,
                )
                if request.verbose:
                    _trace_request(built, run)
                response = client.send(built, stream=True)
            except httpx.HTTPError as exc:
                _transport_failure(exc, url, clock.monotonic() - start, received, run)
                break
            try:
                raw = bytearray()
                timed_out = False
                for chunk in response.iter_raw():
                    raw.extend(chunk)
                    if clock.monotonic() > deadline:
                        timed_out = True
                        break
            except httpx.HTTPError as exc:
                response.close()
                _transport_failure(exc, url, clock.monotonic() - start, len(raw), run)
                break
            response.close()
            received = len(raw)
            if timed_out:
                ms = int((clock.monotonic() - start) * 1000)
                run.fail(
                    28,
                    f"curl: (28) Operation timed out after {ms} milliseconds with "
                    f"{received} bytes received",
                )
                break
            status = response.status_code
            if request.verbose:
                _trace_response(response, run)
            location = response.headers.get("location")
            if request.follow and location and 300 <= status < 400:
                if redirects >= MAX_REDIRECTS:
                    run.fail(47, f"curl: (47) Maximum ({MAX_REDIRECTS}) redirects followed")
                    break
                nxt = urljoin(url, location)
                try:
                    url, mapping = resolve_url(nxt, ctx.bindings, _stack_urls(ctx))
                except Refused as exc:
                    run.fail(1, f"redirect to {nxt} {exc.message}")
                    break
                if mapping:
                    run.notes.append(f"redirect host mapped: {mapping}")
                redirects += 1
                time_redirect = clock.monotonic() - start
                if status == 303 or (status in (301, 302) and method == "POST"):
                    method = "GET"
                    body = _Body()
                continue
            info = _transfer_info(
                request,
                response,
                bytes(raw),
                marks,
                hop_start,
                start,
                clock.monotonic(),
                redirects,
                time_redirect,
                method,
            )
            response_json = _json(response.headers.get("content-type", ""), bytes(raw))
            _emit_body(request, response, bytes(raw), ctx, run)
            if request.fail and status >= 400:
                run.fail(22, f"curl: (22) The requested URL returned error: {status}")
            break
    if fmt:
        info = replace(
            info,
            exitcode=run.exit_code,
            errormsg=run.error.partition(") ")[2],
            url_effective=url,
            time_total=info.time_total or clock.monotonic() - start,
        )
        out, err, warnings = render_write_out(fmt, info)
        run.stdout.append(out)
        run.stderr.append(err)
        for warning in warnings:
            run.stderr.append(warning + "\n")
            run.notes.append(warning)
    if status == 0:
        return None
    return _Response(status, response_json)


def _transport_failure(exc: Exception, url: str, elapsed: float, received: int, run: _Run) -> None:
    import httpx

    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    ms = int(elapsed * 1000)
    if isinstance(exc, httpx.ConnectTimeout):
        run.fail(
            28,
            f"curl: (28) Failed to connect to {host} port {port} after {ms} ms: "
            "Timeout was reached",
        )
    elif isinstance(exc, httpx.ConnectError):
        run.fail(
            7,
            f"curl: (7) Failed to connect to {host} port {port} after {ms} ms: "
            "Couldn't connect to server",
        )
    elif isinstance(exc, httpx.TimeoutException):
        run.fail(
            28,
            f"curl: (28) Operation timed out after {ms} milliseconds with "
            f"{received} bytes received",
        )
    elif isinstance(exc, httpx.RemoteProtocolError):
        run.fail(52, "curl: (52) Empty reply from server")
    elif isinstance(exc, httpx.WriteError):
        run.fail(55, "curl: (55) Send failure: Broken pipe")
    else:
        reason = re.sub(r"^\[Errno \d+\]\s*", "", str(exc)) or type(exc).__name__
        run.fail(56, f"curl: (56) Recv failure: {reason}")


def _trace_request(request: object, run: _Run) -> None:
    import httpx

    assert isinstance(request, httpx.Request)
    url = request.url
    run.stderr.append(f"*   Trying {url.host}:{url.port}...\n")
    target = url.raw_path.decode()
    run.stderr.append(f"> {request.method} {target} HTTP/1.1\n")
    for key, value in request.headers.items():
        run.stderr.append(f"> {key.title()}: {value}\n")
    run.stderr.append(">\n")


def _trace_response(response: object, run: _Run) -> None:
    import httpx

    assert isinstance(response, httpx.Response)
    run.stderr.append(
        f"< {response.http_version} {response.status_code} {response.reason_phrase}\n"
    )
    for key, value in response.headers.items():
        run.stderr.append(f"< {key}: {value}\n")
    run.stderr.append("<\n")


def _transfer_info(
    request: CurlRequest,
    response: object,
    raw: bytes,
    marks: dict[str, float],
    hop_start: float,
    start: float,
    end: float,
    redirects: int,
    time_redirect: float,
    method: str,
) -> TransferInfo:
    import httpx

    assert isinstance(response, httpx.Response)

    def at(name: str, default: float) -> float:
        return max(marks.get(name, default) - start, 0.0)

    connect_started = marks.get("connection.connect_tcp.started", hop_start)
    namelookup = max(connect_started - start, 0.0)
    connect = at("connection.connect_tcp.complete", connect_started)
    pretransfer = at("http11.send_request_headers.started", connect_started)
    starttransfer = at("http11.receive_response_headers.complete", end)
    server = client = None
    stream = response.extensions.get("network_stream")
    if stream is not None:
        try:
            server = stream.get_extra_info("server_addr")
            client = stream.get_extra_info("client_addr")
        except Exception:
            server = client = None
    header_size = sum(len(k) + len(v) + 4 for k, v in response.headers.raw) + 2
    header_size += len(
        f"{response.http_version} {response.status_code} {response.reason_phrase}\r\n"
    )
    req = response.request
    request_size = (
        len(f"{req.method} {req.url.raw_path.decode()} HTTP/1.1\r\n")
        + sum(len(k) + len(v) + 4 for k, v in req.headers.raw)
        + 2
    )
    upload = int(req.headers.get("content-length", "0") or 0)
    return TransferInfo(
        http_code=response.status_code,
        time_namelookup=namelookup,
        time_connect=connect,
        time_appconnect=0.0,
        time_pretransfer=pretransfer,
        time_redirect=time_redirect,
        time_starttransfer=max(starttransfer, pretransfer),
        time_total=max(end - start, 0.0),
        size_download=len(raw),
        size_upload=upload,
        size_header=header_size,
        size_request=request_size,
        url_effective=str(req.url),
        content_type=response.headers.get("content-type", ""),
        num_connects=1 if "connection.connect_tcp.complete" in marks else 0,
        num_redirects=redirects,
        redirect_url=urljoin(str(req.url), response.headers["location"])
        if "location" in response.headers
        else "",
        remote_ip=str(server[0]) if isinstance(server, tuple) else "",
        remote_port=int(server[1]) if isinstance(server, tuple) else 0,
        local_ip=str(client[0]) if isinstance(client, tuple) else "",
        local_port=int(client[1]) if isinstance(client, tuple) else 0,
        http_version=response.http_version.removeprefix("HTTP/"),
        scheme=req.url.scheme.upper(),
        method=method,
        response_headers=tuple((k, v) for k, v in response.headers.items()),
    )


def _json(content_type: str, raw: bytes) -> JsonValue:
    """The body as data: JSON parsed; Prometheus' text exposition (a /metrics page) as
    {series: value}, so a check reads every series however long the page (the output
    text is an excerpt)."""
    if "version=0.0.4" in content_type.lower() or "openmetrics" in content_type.lower():
        return _prometheus(raw)
    if "json" not in content_type.lower():
        return None
    try:
        value: JsonValue = json.loads(raw)
    except ValueError:
        return None
    return value


def _prometheus(raw: bytes) -> JsonValue:
    series: dict[str, JsonValue] = {}
    for line in raw.decode(errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            series[name.strip()] = float(value)
        except ValueError:
            continue
    return series


def _emit_body(
    request: CurlRequest, response: object, raw: bytes, ctx: ExecContext, run: _Run
) -> None:
    import httpx

    assert isinstance(response, httpx.Response)
    head = ""
    if request.include or request.head:
        head = f"{response.http_version} {response.status_code} {response.reason_phrase}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in response.headers.items()) + "\r\n"
    text = raw.decode(errors="replace")
    if request.output is not None:  # headers (-i/-I) and body go to the file
        if request.output != "/dev/null":
            target = ctx.folder / Path(request.output).name
            target.write_bytes(head.encode() + (b"" if request.head else raw))
            run.notes.append(f"-o {request.output} -> {target}")
        return
    if request.head:
        run.stdout.append(head)
        return
    run.stdout.append(head + text)
