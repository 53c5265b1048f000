"""curl command lines as data: `parse_curl(text) -> CurlRequest`, and curl's `-w` format.

Parsing sends nothing, so the gate can check a curl line's method and route against the
API's OpenAPI document. The option grammar is curl's: short options may be bundled
(`-sS`, `-XPOST`), long options take their value as the next word (curl has no
`--opt=value`), and the method is -X, else HEAD for -I, else POST when there is a body
(-d/-F), else GET.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from runbook_checks.errors import UsageError

# option -> canonical long name, for options that take a value
_VALUE_OPTIONS: Mapping[str, str] = {
    "-X": "request", "--request": "request",
    "-H": "header", "--header": "header",
    "-F": "form", "--form": "form", "--form-string": "form-string",
    "-d": "data", "--data": "data", "--data-ascii": "data", "--data-raw": "data-raw",
    "--data-binary": "data-binary", "--data-urlencode": "data-urlencode", "--json": "json",
    "-w": "write-out", "--write-out": "write-out",
    "-o": "output", "--output": "output",
    "-m": "max-time", "--max-time": "max-time", "--connect-timeout": "connect-timeout",
    "-u": "user", "--user": "user", "-A": "user-agent", "--user-agent": "user-agent",
    "-e": "referer", "--referer": "referer", "-b": "cookie", "--cookie": "cookie",
    "--url": "url", "--max-redirs": "max-redirs",
    "--retry": "retry", "--retry-delay": "retry-delay", "--retry-max-time": "retry-max-time",
    "-T": "upload-file", "--upload-file": "upload-file", "-x": "proxy", "--proxy": "proxy",
    "--resolve": "resolve", "--connect-to": "connect-to", "-D": "dump-header",
    "--dump-header": "dump-header", "-c": "cookie-jar", "--cookie-jar": "cookie-jar",
}  # fmt: skip
# option -> canonical name, for flags
_FLAG_OPTIONS: Mapping[str, str] = {
    "-v": "verbose", "--verbose": "verbose", "-s": "silent", "--silent": "silent",
    "-S": "show-error", "--show-error": "show-error", "-L": "location",
    "--location": "location", "-I": "head", "--head": "head", "-i": "include",
    "--include": "include", "-f": "fail", "--fail": "fail", "--fail-with-body": "fail",
    "-k": "insecure", "--insecure": "insecure", "-G": "get", "--get": "get",
    "--compressed": "compressed", "-N": "no-buffer", "--no-buffer": "no-buffer",
    "--http1.1": "http1.1", "--http2": "http2", "-#": "progress-bar",
    "--progress-bar": "progress-bar", "-0": "http1.0", "--http1.0": "http1.0",
    "-g": "globoff", "--globoff": "globoff", "-n": "netrc", "--netrc": "netrc",
    "-q": "disable", "--disable": "disable", "--no-progress-meter": "silent-progress",
}  # fmt: skip
# options we accept but whose effect is not emulated (they do not change the request)
IGNORED_OPTIONS = frozenset(
    {"compressed", "no-buffer", "http1.1", "http2", "http1.0", "progress-bar", "globoff",
     "disable", "silent-progress", "insecure", "retry", "retry-delay", "retry-max-time",
     "max-redirs"}
)  # fmt: skip
# options we refuse to emulate: they send traffic elsewhere or need files we do not map
UNSUPPORTED_OPTIONS = frozenset(
    {"proxy", "resolve", "connect-to", "upload-file", "netrc", "cookie-jar", "dump-header"}
)


@dataclass(frozen=True)
class FormField:
    """One `-F name=value` / `-F name=@file;type=...` part."""

    name: str
    value: str  # the value, or the file name after '@' / '<'
    is_file: bool = False  # name=@file: an uploaded file
    from_file: bool = False  # name=<file: a text field read from a file
    content_type: str | None = None
    filename: str | None = None
    literal: bool = False  # --form-string: the value is taken as is
    raw: str = field(default="", compare=False)  # the -F argument as written

    @property
    def option(self) -> str:
        return "--form-string" if self.literal else "-F"

    def to_arg(self) -> str:
        """The -F (or --form-string) argument that means this field."""
        if self.raw:
            return self.raw
        if self.literal:
            return f"{self.name}={self.value}"
        prefix = "@" if self.is_file else "<" if self.from_file else ""
        text = f"{self.name}={prefix}{self.value}"
        if self.content_type:
            text += f";type={self.content_type}"
        if self.filename:
            text += f";filename={self.filename}"
        return text


@dataclass(frozen=True)
class CurlRequest:
    """What a curl command line asks for, before any host mapping."""

    url: str
    method: str = "GET"
    method_explicit: bool = False  # -X given
    headers: tuple[tuple[str, str], ...] = ()
    form: tuple[FormField, ...] = ()
    data: tuple[str, ...] = ()  # -d/--data* arguments as written, in order
    data_options: tuple[str, ...] = ()  # the option each `data` item came with
    write_out: str | None = None  # the -w argument as written ("@curl-format.txt" or a format)
    output: str | None = None  # -o
    verbose: bool = False
    silent: bool = False
    show_error: bool = False
    include: bool = False
    head: bool = False
    follow: bool = False
    fail: bool = False
    get: bool = False  # -G: data goes into the query string
    max_time: float | None = None
    connect_timeout: float | None = None
    user: str | None = None
    ignored: tuple[str, ...] = ()  # options accepted without effect here
    unsupported: tuple[str, ...] = ()  # options that cannot be emulated safely
    unknown: tuple[str, ...] = ()  # options curl itself would reject
    argv: tuple[str, ...] = field(default=(), compare=False)

    @property
    def path(self) -> str:
        """The URL's path ("/api/orders/upload"), "/" when empty."""
        return urlsplit(_with_scheme(self.url)).path or "/"

    @property
    def host(self) -> str:
        """host[:port] as written in the URL."""
        return urlsplit(_with_scheme(self.url)).netloc.rsplit("@", 1)[-1]

    def header(self, name: str) -> str | None:
        for key, value in reversed(self.headers):
            if key.lower() == name.lower():
                return value
        return None

    def to_argv(self) -> list[str]:
        """A curl command line that parses back to this request (canonical spelling)."""
        argv = ["curl"]
        if self.method_explicit:
            argv += ["-X", self.method]
        for key, value in self.headers:
            argv += ["-H", f"{key}: {value}"]
        for part in self.form:
            argv += [part.option, part.to_arg()]
        for option, item in zip(self.data_options, self.data, strict=True):
            argv += [option, item]
        if self.write_out is not None:
            argv += ["-w", self.write_out]
        if self.output is not None:
            argv += ["-o", self.output]
        for flag, on in (
            ("-v", self.verbose),
            ("-s", self.silent),
            ("-S", self.show_error),
            ("-i", self.include),
            ("-I", self.head),
            ("-L", self.follow),
            ("-f", self.fail),
            ("-G", self.get),
        ):
            if on:
                argv.append(flag)
        if self.max_time is not None:
            argv += ["--max-time", _number(self.max_time)]
        if self.connect_timeout is not None:
            argv += ["--connect-timeout", _number(self.connect_timeout)]
        if self.user is not None:
            argv += ["-u", self.user]
        argv.append(self.url)
        return argv

    def to_command(self) -> str:
        return shlex.join(self.to_argv())


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def _with_scheme(url: str) -> str:
    return url if "://" in url else f"http://{url}"


def parse_form(arg: str) -> FormField:
    """`name=value`, `name=@file[;type=T][;filename=F]`, `name=<file`."""
    name, sep, rest = arg.partition("=")
    if not sep:
        raise UsageError(
            f"curl -F {arg!r}: expected name=content (curl: option -F: is badly used here)"
        )
    if rest.startswith(("@", "<")):
        marker, body = rest[0], rest[1:]
        parts = body.split(";")
        value = parts[0]
        content_type = None
        filename = None
        for extra in parts[1:]:
            key, _, val = extra.partition("=")
            if key.strip() == "type":
                content_type = val
            elif key.strip() == "filename":
                filename = val.strip('"')
            else:
                value += ";" + extra  # a ';' that is part of the file name
        return FormField(
            name,
            value,
            is_file=marker == "@",
            from_file=marker == "<",
            content_type=content_type,
            filename=filename,
            raw=arg,
        )
    return FormField(name, rest, raw=arg)


def parse_curl(text: str | Sequence[str]) -> CurlRequest:
    """Parse a curl command line (a string, split like the shell does, or an argv).

    Raises `UsageError` when it is not a curl command or names no URL.
    """
    if isinstance(text, str):
        try:
            argv = shlex.split(text.replace("\\\n", " "))
        except ValueError as exc:
            raise UsageError(f"cannot split the curl line: {exc}", hint="check its quotes") from exc
    else:
        argv = list(text)
    while argv and argv[0] in ("sudo", "time", "command"):
        argv.pop(0)
    if not argv or argv[0].rsplit("/", 1)[-1] != "curl":
        raise UsageError(f"not a curl command: {' '.join(argv)[:80]!r}")

    values: dict[str, list[str]] = {}
    flags: set[str] = set()
    data: list[str] = []
    data_options: list[str] = []
    urls: list[str] = []
    unknown: list[str] = []
    i = 1
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            urls.extend(argv[i:])
            break
        if arg.startswith("--") and len(arg) > 2:
            if arg in _VALUE_OPTIONS:
                if i >= len(argv):
                    unknown.append(arg)  # curl: option --x: requires parameter
                    break
                _take(_VALUE_OPTIONS[arg], argv[i], arg, values, data, data_options)
                i += 1
            elif arg in _FLAG_OPTIONS:
                flags.add(_FLAG_OPTIONS[arg])
            elif arg.startswith("--no-") and f"--{arg[5:]}" in _FLAG_OPTIONS:
                flags.discard(_FLAG_OPTIONS[f"--{arg[5:]}"])
            else:
                unknown.append(arg)
            continue
        if arg.startswith("-") and len(arg) > 1:
            j = 1
            while j < len(arg):
                short = f"-{arg[j]}"
                if short in _VALUE_OPTIONS:
                    value = arg[j + 1 :]
                    if not value:
                        if i >= len(argv):
                            unknown.append(short)
                            break
                        value = argv[i]
                        i += 1
                    _take(_VALUE_OPTIONS[short], value, short, values, data, data_options)
                    break
                if short in _FLAG_OPTIONS:
                    flags.add(_FLAG_OPTIONS[short])
                else:
                    unknown.append(short)
                j += 1
            continue
        urls.append(arg)
    urls = values.pop("url", []) + urls
    if not urls:
        raise UsageError("curl: no URL specified", hint="a curl step needs a URL")

    headers: list[tuple[str, str]] = []
    for header in values.get("header", []):
        name, _, value = header.partition(":")
        headers.append((name.strip(), value.strip()))
    form_parts: list[FormField] = []
    for item in values.get("forms", []):
        if item[0] == "F":
            form_parts.append(parse_form(item[1:]))
        else:
            name, _, value = item[1:].partition("=")
            form_parts.append(FormField(name, value, literal=True, raw=item[1:]))
    form = tuple(form_parts)
    if "json" in values:
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "application/json"))
        if not any(k.lower() == "accept" for k, _ in headers):
            headers.append(("Accept", "application/json"))

    explicit = values.get("request", [])
    if explicit:
        method = explicit[-1]
    elif "head" in flags:
        method = "HEAD"
    elif "get" in flags:
        method = "GET"
    elif form or data:
        method = "POST"
    else:
        method = "GET"

    ignored = sorted(flags & IGNORED_OPTIONS) + sorted(k for k in values if k in IGNORED_OPTIONS)
    unsupported = sorted(flags & UNSUPPORTED_OPTIONS) + sorted(
        k for k in values if k in UNSUPPORTED_OPTIONS
    )
    if len(urls) > 1:
        unsupported.append(f"several URLs ({len(urls)})")
    return CurlRequest(
        url=urls[0],
        method=method,
        method_explicit=bool(explicit),
        headers=tuple(headers),
        form=form,
        data=tuple(data),
        data_options=tuple(data_options),
        write_out=_last(values, "write-out"),
        output=_last(values, "output"),
        verbose="verbose" in flags,
        silent="silent" in flags,
        show_error="show-error" in flags,
        include="include" in flags,
        head="head" in flags,
        follow="location" in flags,
        fail="fail" in flags,
        get="get" in flags,
        max_time=_float(_last(values, "max-time")),
        connect_timeout=_float(_last(values, "connect-timeout")),
        user=_last(values, "user"),
        ignored=tuple(ignored),
        unsupported=tuple(unsupported),
        unknown=tuple(unknown),
        argv=tuple(argv),
    )


def _take(
    name: str,
    value: str,
    option: str,
    values: dict[str, list[str]],
    data: list[str],
    data_options: list[str],
) -> None:
    if name in ("data", "data-raw", "data-binary", "data-urlencode", "json"):
        data.append(value)
        data_options.append(option if option.startswith("--") else "-d")
    if name in ("form", "form-string"):
        values.setdefault("forms", []).append(("S" if name == "form-string" else "F") + value)
    values.setdefault(name, []).append(value)


def _last(values: Mapping[str, list[str]], name: str) -> str | None:
    items = values.get(name)
    return items[-1] if items else None


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


# -- --write-out ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferInfo:
    """What curl knows after a transfer, for `-w` variables. Times in seconds."""

    http_code: int = 0
    time_namelookup: float = 0.0
    time_connect: float = 0.0
    time_appconnect: float = 0.0
    time_pretransfer: float = 0.0
    time_redirect: float = 0.0
    time_starttransfer: float = 0.0
    time_total: float = 0.0
    size_download: int = 0
    size_upload: int = 0
    size_header: int = 0
    size_request: int = 0
    url_effective: str = ""
    content_type: str = ""
    num_connects: int = 0
    num_redirects: int = 0
    redirect_url: str = ""
    remote_ip: str = ""
    remote_port: int = 0
    local_ip: str = ""
    local_port: int = 0
    http_version: str = "1.1"
    scheme: str = "HTTP"
    method: str = "GET"
    exitcode: int = 0
    errormsg: str = ""
    response_headers: tuple[tuple[str, str], ...] = ()

    def variables(self) -> dict[str, str]:
        total = self.time_total or 0.0
        speed_download = self.size_download / total if total > 0 else 0.0
        speed_upload = self.size_upload / total if total > 0 else 0.0
        times = {
            name: f"{getattr(self, name):.6f}"
            for name in (
                "time_namelookup",
                "time_connect",
                "time_appconnect",
                "time_pretransfer",
                "time_redirect",
                "time_starttransfer",
                "time_total",
            )
        }
        return {
            **times,
            "http_code": f"{self.http_code:03d}",
            "response_code": f"{self.http_code:03d}",
            "http_connect": "000",
            "size_download": str(self.size_download),
            "size_upload": str(self.size_upload),
            "size_header": str(self.size_header),
            "size_request": str(self.size_request),
            "speed_download": f"{speed_download:.0f}",
            "speed_upload": f"{speed_upload:.0f}",
            "url_effective": self.url_effective,
            "url": self.url_effective,
            "content_type": self.content_type,
            "num_connects": str(self.num_connects),
            "num_redirects": str(self.num_redirects),
            "num_headers": str(len(self.response_headers)),
            "redirect_url": self.redirect_url,
            "remote_ip": self.remote_ip,
            "remote_port": str(self.remote_port),
            "local_ip": self.local_ip,
            "local_port": str(self.local_port),
            "http_version": self.http_version,
            "scheme": self.scheme,
            "method": self.method,
            "exitcode": str(self.exitcode),
            "errormsg": self.errormsg,
            "ssl_verify_result": "0",
            "proxy_ssl_verify_result": "0",
            "filename_effective": "",
            "ftp_entry_path": "",
        }


def format_from_file(text: str) -> str:
    """A `-w @file` format as curl reads it: line by line, line ends dropped (only the
    `\\n` escapes in the text make new lines)."""
    return text.replace("\r", "").replace("\n", "")


_WRITE_OUT_TOKEN = re.compile(r"%\{([^}]*)\}|%header\{([^}]*)\}|%%|\\[nrt\\]|%")


def render_write_out(fmt: str, info: TransferInfo) -> tuple[str, str, list[str]]:
    """curl's rendering of a `-w` format: (stdout text, stderr text, warnings).

    Handles `%{variable}`, `%header{name}`, `%%`, `\\n` `\\r` `\\t` `\\\\`, and the stream
    switches `%{stdout}` / `%{stderr}`. An unknown variable prints nothing and a warning,
    as curl does.
    """
    variables = info.variables()
    streams: dict[str, list[str]] = {"stdout": [], "stderr": []}
    current = "stdout"
    warnings: list[str] = []
    position = 0
    for m in _WRITE_OUT_TOKEN.finditer(fmt):
        streams[current].append(fmt[position : m.start()])
        position = m.end()
        token = m.group(0)
        if m.group(1) is not None:
            name = m.group(1)
            if name in ("stdout", "stderr"):
                current = name
            elif name == "json":
                import json

                streams[current].append(json.dumps(variables, sort_keys=True))
            elif name == "header_json":
                import json

                streams[current].append(
                    json.dumps({k.lower(): [v] for k, v in info.response_headers})
                )
            elif name in variables:
                streams[current].append(variables[name])
            else:
                warnings.append(f"curl: unknown --write-out variable: '{name}'")
        elif m.group(2) is not None:
            wanted = m.group(2).lower()
            values = [v for k, v in info.response_headers if k.lower() == wanted]
            streams[current].append(", ".join(values))
        elif token == "%%" or token == "%":
            streams[current].append("%")
        else:
            streams[current].append({"\\n": "\n", "\\r": "\r", "\\t": "\t", "\\\\": "\\"}[token])
    streams[current].append(fmt[position:])
    return "".join(streams["stdout"]), "".join(streams["stderr"]), warnings
