"""The stack's object store: moto's S3 server, as `python -m moto.server` runs it.

    python -m runbook_checks.stack.object_store_server -H 127.0.0.1 -p PORT

moto's own server (`moto.server.main`: the same arguments, application and threads),
with moto's per-request lookup of its module folders done once at start
(`service_lookup_listed_once`, shared with the AWS control plane's launcher). Nothing
it answers changes; each request costs it less CPU (a download, a HeadBucket of /health).
"""

from __future__ import annotations

from runbook_checks.stack.aws_control_plane import service_lookup_listed_once


def main(argv: list[str] | None = None) -> None:
    from moto.server import main as moto_main

    service_lookup_listed_once()
    moto_main(argv)


if __name__ == "__main__":
    main()
