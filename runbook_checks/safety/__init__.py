"""What keeps a drill safe to run: nothing left behind, nothing touched it should not touch.

- `policy`: which faults are safe on an environment that is not ours, and whether an
  environment looks like production.
- `audit`: an append-only log, written and flushed BEFORE each action happens.
- `guard`: stop conditions (as in AWS FIS): a metric polled during a drill; crossing its
  limit reverts every live fault and aborts the drill.

Ctrl-C and SIGTERM are `runbook_checks.interrupts` (beside the CLI and the plugin that
install it: it reverts faults and stops stacks, so it sits above them). A process killed
with SIGKILL runs none of this: its servers die with it (parent-death
signal, `stack.process`), and its folder, mounts and recorded faults are swept by the
next stack start or `runbook-checks cleanup` (`stack.leftovers`).
"""
