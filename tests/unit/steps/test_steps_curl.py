"""parse_curl: the runbook's curl lines, curl's option grammar, and a round-trip property."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runbook_checks.errors import UsageError
from runbook_checks.steps.curl import CurlRequest, FormField, parse_curl, parse_form

UPLOAD = (
    "curl -X POST https://api.rolerabbit.com/api/storage/files/upload \\\n"
    '  -H "Authorization: Bearer TOKEN" \\\n'
    '  -F "file=@test.txt"'
)


def test_the_runbooks_upload_line() -> None:
    request = parse_curl(UPLOAD)
    assert request.method == "POST"
    assert request.method_explicit
    assert request.url == "https://api.rolerabbit.com/api/storage/files/upload"
    assert request.path == "/api/storage/files/upload"
    assert request.host == "api.rolerabbit.com"
    assert request.headers == (("Authorization", "Bearer TOKEN"),)
    assert request.form == (FormField("file", "test.txt", is_file=True),)
    assert request.header("authorization") == "Bearer TOKEN"


def test_verbose_upload_and_write_out_lines() -> None:
    verbose = parse_curl(
        "curl -X POST https://api.rolerabbit.com/api/storage/files/upload "
        '-H "Authorization: Bearer USER_TOKEN" -F "file=@test.pdf" -v'
    )
    assert verbose.verbose
    assert verbose.form[0].value == "test.pdf"
    timing = parse_curl('curl -w "@curl-format.txt" https://api.rolerabbit.com/api/storage/files')
    assert timing.write_out == "@curl-format.txt"
    assert timing.method == "GET"
    assert not timing.method_explicit


@pytest.mark.parametrize(
    ("line", "method"),
    [
        ("curl https://x/health", "GET"),
        ("curl -I https://x/health", "HEAD"),
        ("curl -d a=1 https://x/", "POST"),
        ("curl -F f=@a.txt https://x/", "POST"),
        ("curl -G -d a=1 https://x/", "GET"),
        ("curl -XPUT https://x/", "PUT"),
        ("curl --request DELETE https://x/", "DELETE"),
        ("curl -X POST -I https://x/", "POST"),
    ],
)
def test_method_is_x_else_head_else_body_post_else_get(line: str, method: str) -> None:
    assert parse_curl(line).method == method


def test_bundled_short_options_and_attached_values() -> None:
    request = parse_curl("curl -sSLfv -XPATCH -HX-Trace:1 -o/dev/null -m5 http://h/p")
    assert (request.silent, request.show_error, request.follow, request.fail, request.verbose) == (
        True,
        True,
        True,
        True,
        True,
    )
    assert request.method == "PATCH"
    assert request.headers == (("X-Trace", "1"),)
    assert request.output == "/dev/null"
    assert request.max_time == 5.0


def test_unknown_options_are_reported_not_dropped() -> None:
    request = parse_curl("curl --frobnicate -Z http://h/")
    assert request.unknown == ("--frobnicate", "-Z")
    # curl has no --opt=value syntax: that is an unknown option too
    assert parse_curl("curl --max-time=5 http://h/").unknown == ("--max-time=5",)


def test_options_that_would_leave_the_stack_are_marked_unsupported() -> None:
    request = parse_curl("curl -x http://proxy:3128 --resolve a:80:1.2.3.4 http://h/")
    assert set(request.unsupported) == {"proxy", "resolve"}


def test_no_url_and_not_curl_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="no URL"):
        parse_curl("curl -v")
    with pytest.raises(UsageError, match="not a curl command"):
        parse_curl("wget http://h/")
    with pytest.raises(UsageError, match="quotes"):
        parse_curl('curl "http://h/')


def test_json_option_sets_body_and_headers() -> None:
    request = parse_curl("""curl --json '{"a": 1}' http://h/""")
    assert request.method == "POST"
    assert request.data == ('{"a": 1}',)
    assert request.header("Content-Type") == "application/json"


def test_form_modifiers() -> None:
    assert parse_form("file=@a b.txt;type=text/plain;filename=x.txt") == FormField(
        "file", "a b.txt", is_file=True, content_type="text/plain", filename="x.txt"
    )
    assert parse_form("note=<msg.txt") == FormField("note", "msg.txt", from_file=True)
    assert parse_form("name=value") == FormField("name", "value")
    with pytest.raises(UsageError):
        parse_form("novalue")


def test_a_sudo_prefix_and_argv_input() -> None:
    assert parse_curl(["sudo", "curl", "http://h/"]).url == "http://h/"


# -- round trip ---------------------------------------------------------------------------

_PRINTABLE = st.characters(blacklist_categories=("Cs", "Cc"))
_text = st.text(_PRINTABLE, min_size=1, max_size=24).filter(lambda s: s == s.strip())
_token = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1, max_size=16
)
_file_name = st.text("abcdefghijklmnopqrstuvwxyz0123456789_.- ", min_size=1, max_size=16).filter(
    lambda s: s.strip() == s and not s.startswith("-")
)
_header = st.tuples(_token, _text)
_form_field = st.one_of(
    st.builds(
        FormField,
        _token,
        _file_name,
        is_file=st.just(True),
        content_type=st.none() | st.sampled_from(["text/plain", "application/pdf"]),
    ),
    st.builds(FormField, _token, _text.filter(lambda s: s[0] not in "@<" and ";" not in s)),
    st.builds(FormField, _token, _text, literal=st.just(True)),
)
_data = st.one_of(
    st.tuples(
        st.sampled_from(["-d", "--data-binary", "--data-urlencode"]),
        _text.filter(lambda s: not s.startswith("@")),
    ),
    st.tuples(st.just("--data-raw"), _text),
)
_url = st.builds(
    lambda scheme, host, port, path, query: f"{scheme}://{host}{port}/{path}{query}",
    st.sampled_from(["http", "https"]),
    st.sampled_from(["api.rolerabbit.com", "localhost", "127.0.0.1", "rolerabbit.com"]),
    st.sampled_from(["", ":5000", ":8080"]),
    st.lists(_token, max_size=4).map("/".join),
    st.sampled_from(["", "?a=1", "?q=a%20b&x=y"]),
)


@st.composite
def curl_requests(draw: st.DrawFn) -> CurlRequest:
    form = tuple(draw(st.lists(_form_field, max_size=3)))
    data = () if form else tuple(draw(st.lists(_data, max_size=2)))
    explicit = draw(st.booleans())
    head = draw(st.booleans())
    get = draw(st.booleans())
    if explicit:
        method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]))
    else:
        method = "HEAD" if head else "GET" if get else "POST" if form or data else "GET"
    return CurlRequest(
        url=draw(_url),
        method=method,
        method_explicit=explicit,
        headers=tuple(draw(st.lists(_header, max_size=4))),
        form=form,
        data=tuple(item for _, item in data),
        data_options=tuple(option for option, _ in data),
        write_out=draw(st.none() | _text),
        output=draw(st.none() | st.sampled_from(["/dev/null", "out.bin"])),
        verbose=draw(st.booleans()),
        silent=draw(st.booleans()),
        show_error=draw(st.booleans()),
        include=draw(st.booleans()),
        head=head,
        follow=draw(st.booleans()),
        fail=draw(st.booleans()),
        get=get,
        max_time=draw(st.none() | st.sampled_from([1.0, 5.0, 2.5, 300.0])),
        connect_timeout=draw(st.none() | st.sampled_from([1.0, 0.5])),
        user=draw(st.none() | st.just("alice:s3cret")),
    )


@given(curl_requests())
def test_any_curl_line_round_trips_through_parse_curl(request: CurlRequest) -> None:
    line = request.to_command()
    parsed = parse_curl(line)
    assert parsed == request
    # quoting is preserved: each header and form value comes back exactly as written
    assert [v for _, v in parsed.headers] == [v for _, v in request.headers]
    assert shlex.split(line)[0] == "curl"


@given(curl_requests())
def test_a_continued_line_parses_like_the_joined_one(request: CurlRequest) -> None:
    argv = request.to_argv()
    continued = " \\\n  ".join(shlex.quote(a) for a in argv)
    assert parse_curl(continued) == request
