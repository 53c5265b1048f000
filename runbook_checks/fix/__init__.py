"""`runbook-checks fix`: the findings that have a mechanical fix, as minimal line edits.

`fixers.py` turns one finding into one `Edit` of one line (or None); `plan.py` gathers
the findings (the gate's, the baseline's acknowledged drill findings, a drill's
findings.json) and runs the fixers; `edit.py` applies edits to the file's bytes and
writes the unified diff; `verify.py` gates and drills the patched copy; `api.py` is what
other commands call (`propose`).
"""
