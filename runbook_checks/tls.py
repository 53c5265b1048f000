"""One TLS context for every HTTP client the suite creates.

httpx builds a new SSL context for every client it creates, `httpx.get` included, and
loads the whole CA bundle into it: 15-60 ms of CPU each on a small machine. The stack's
readiness probes, the balancer's health rounds and the drills' samplers create a client
per request, so most of a stack's start and of `reset_data` went into loading
certificates for plain-HTTP requests to 127.0.0.1. The context is built once, the way
httpx builds its default one (its CA bundle, SSL_CERT_FILE and SSL_CERT_DIR), and shared:
one SSLContext may serve any number of clients and threads. Every `httpx` client of the
engine passes `verify=tls_context()` (tests/unit/ci/test_tls_context.py checks it).
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()
