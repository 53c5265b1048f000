"""The ceiling bench_twin.py compares the twin with: one FastAPI endpoint returning a small
JSON, on uvicorn as the twin runs it (same loop and HTTP implementation, no access log).

    python benchmarks/twin/trivial_app.py PORT
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_config=None,
        access_log=False,
        timeout_keep_alive=5,
    )
