"""One GET, again and again, for bench_twin.py: a closed loop of FastHttpUsers with no
think time, the same for the twin and the trivial endpoint it is compared with.

Environment: BENCH_PATH (the path to GET), BENCH_AUTH (an Authorization header value,
optional), BENCH_NAME (the request's name in locust's stats).
"""

from __future__ import annotations

import os

from locust import FastHttpUser, constant, task

PATH = os.environ["BENCH_PATH"]
NAME = os.environ.get("BENCH_NAME", PATH)
AUTH = os.environ.get("BENCH_AUTH", "")
HEADERS = {"Authorization": AUTH} if AUTH else {}


class OneGet(FastHttpUser):
    wait_time = constant(0)

    @task
    def get(self) -> None:
        with self.client.get(PATH, headers=HEADERS, name=NAME, catch_response=True) as answer:
            if answer.status_code != 200:
                answer.failure(f"status {answer.status_code}")
