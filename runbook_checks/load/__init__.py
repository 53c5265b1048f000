"""Load tests before traffic increases (locust), and load during faults.

- `runner.run_load(LoadSpec(...))`: one bounded load run with a verdict
  (`runbook-checks load`);
- `background.background_load(stack, users=..., duration_s=...)`: load kept running
  while a fault runs, with the per-second timeline of error rate and latency.

Locust itself only ever runs in subprocesses (it monkey-patches with gevent on import);
nothing here imports it.
"""
