"""The ceiling bench_twin.py compares the twin with: one FastAPI endpoint returning a small
JSON, on uvicorn as the twin runs it (the same event loop and HTTP parser:
files_api.__main__.loop_and_parser; no access log).

    python benchmarks/twin/trivial_app.py PORT
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

from files_api.__main__ import loop_and_parser

app = FastAPI()


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    loop, http = loop_and_parser()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop=loop,
        http=http,
        log_config=None,
        access_log=False,
        timeout_keep_alive=5,
    )
