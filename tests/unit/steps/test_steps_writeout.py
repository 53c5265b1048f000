"""curl's --write-out emulation: variables, escapes, streams, the format file."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from runbook_checks.steps.binding import CURL_FORMAT
from runbook_checks.steps.curl import TransferInfo, format_from_file, render_write_out

INFO = TransferInfo(
    http_code=200,
    time_namelookup=0.000123,
    time_connect=0.0012,
    time_pretransfer=0.0013,
    time_starttransfer=0.0254,
    time_total=0.031,
    size_download=62,
    url_effective="http://127.0.0.1:5000/health",
    content_type="application/json",
    method="GET",
    response_headers=(("content-type", "application/json"), ("x-request-id", "r-1")),
)


def test_http_code_and_times_print_like_curl() -> None:
    out, err, warnings = render_write_out("%{http_code} %{time_total} %{time_connect}", INFO)
    assert out == "200 0.031000 0.001200"
    assert (err, warnings) == ("", [])


def test_a_failed_transfer_prints_000() -> None:
    out, _, _ = render_write_out("%{http_code}", TransferInfo())
    assert out == "000"


def test_escapes_and_percent() -> None:
    out, _, _ = render_write_out("a\\tb\\nc%%d\\\\e%", INFO)
    assert out == "a\tb\nc%d\\e%"


def test_unknown_variable_prints_nothing_and_warns() -> None:
    out, _, warnings = render_write_out("[%{no_such_thing}]", INFO)
    assert out == "[]"
    assert warnings == ["curl: unknown --write-out variable: 'no_such_thing'"]


def test_stream_switch_and_header_lookup() -> None:
    out, err, _ = render_write_out("%{http_code}%{stderr}%header{X-Request-Id}", INFO)
    assert (out, err) == ("200", "r-1")


def test_json_variable_is_valid_json() -> None:
    import json

    out, _, _ = render_write_out("%{json}", INFO)
    assert json.loads(out)["http_code"] == "200"


def test_the_usual_curl_format_file() -> None:
    fmt = format_from_file(CURL_FORMAT)
    out, _, warnings = render_write_out(fmt, INFO)
    lines = out.splitlines()
    assert warnings == []
    assert lines[0].strip() == "time_namelookup:  0.000123s"
    assert lines[-1].strip() == "time_total:  0.031000s"
    assert len(lines) == 8  # one line per `\n` escape: the file's own line ends are dropped


@given(st.text(st.characters(blacklist_characters="%\\"), max_size=40))
def test_text_without_directives_is_printed_as_is(text: str) -> None:
    assert render_write_out(text, INFO) == (text, "", [])


@given(st.floats(min_value=0, max_value=1000, allow_nan=False))
def test_times_have_six_decimals(seconds: float) -> None:
    out, _, _ = render_write_out("%{time_total}", TransferInfo(time_total=seconds))
    assert out == f"{seconds:.6f}"
