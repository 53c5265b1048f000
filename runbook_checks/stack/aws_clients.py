"""boto3 clients for the harness: from one session of its own, made one at a time.

`boto3.client(...)` makes its client from boto3's module-wide default session, and boto3
says a session is not safe to use from several threads at once (a client, once made,
is). The harness makes clients from several threads: the control plane's keeper seeds
the balancer's target groups (EC2, ELBv2) while a test or a drill makes its S3 client,
tests make clients from their own threads. So every client the harness makes comes from
here: one session, created on first use, and a lock around the making (a client costs
~5 ms of a session that has read its service's model, ~0.1 s the first time). boto3 is
imported only then: most commands never make a client.

A service's twin makes its own clients: it is another process.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import boto3.session

_LOCK = threading.Lock()
_SESSION: list[boto3.session.Session] = []  # the one session, once made


def _session() -> boto3.session.Session:
    if not _SESSION:
        import boto3.session

        _SESSION.append(boto3.session.Session())
    return _SESSION[0]


def client(service: str, **kwargs: Any) -> Any:
    """A boto3 client of `service` (`kwargs` as `Session.client` takes them: region_name,
    endpoint_url, credentials, config), made while no other thread makes one."""
    with _LOCK:
        return _session().client(service, **kwargs)  # type: ignore[call-overload]
