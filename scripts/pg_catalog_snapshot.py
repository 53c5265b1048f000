"""Write runbook_checks/gate/stock_catalog.py from a real PostgreSQL: its system catalogs.

    .venv/bin/python scripts/pg_catalog_snapshot.py [--bin /usr/lib/postgresql/15/bin]

Starts a throwaway cluster (initdb in a temporary folder, a Unix socket only, as the
`postgres` user when run as root), creates the contrib extensions runbooks query, and
writes what the gate's stock-catalog check needs: every relation of pg_catalog and
information_schema with its columns (system columns of tables too), the extensions'
relations and functions, the names of the built-in functions, and the server's settings.
Run it again for another major version; the generated module says which it came from.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "runbook_checks" / "gate" / "stock_catalog.py"
# the contrib extensions whose views and functions runbooks use (monitoring, bloat, locks,
# buffers); created in the scratch database so that their names are known too
EXTENSIONS = (
    "pg_stat_statements",
    "pg_buffercache",
    "pgstattuple",
    "pg_visibility",
    "pgrowlocks",
    "pg_freespacemap",
    "amcheck",
    "pg_prewarm",
    "pg_walinspect",
    "pageinspect",
    "pg_trgm",
    "pgcrypto",
    "uuid-ossp",
)
RELATIONS = """
SELECT n.nspname, c.relname,
       array_agg(a.attname::text ORDER BY a.attnum > 0 DESC, abs(a.attnum))
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND NOT a.attisdropped
     AND (a.attnum > 0 OR c.relkind = 'r')
WHERE n.nspname IN ('pg_catalog', 'information_schema')
  AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
GROUP BY 1, 2
ORDER BY 1, 2
"""
EXTENSION_RELATIONS = """
SELECT e.extname, c.relname, array_agg(a.attname::text ORDER BY a.attnum)
FROM pg_extension e
JOIN pg_depend d ON d.refobjid = e.oid AND d.deptype = 'e'
     AND d.classid = 'pg_class'::regclass
JOIN pg_class c ON c.oid = d.objid AND c.relkind IN ('r', 'v', 'm')
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
GROUP BY 1, 2
ORDER BY 1, 2
"""
EXTENSION_FUNCTIONS = """
SELECT DISTINCT e.extname, p.proname
FROM pg_extension e
JOIN pg_depend d ON d.refobjid = e.oid AND d.deptype = 'e'
     AND d.classid = 'pg_proc'::regclass
JOIN pg_proc p ON p.oid = d.objid
WHERE e.extname <> 'plpgsql'
ORDER BY 2, 1
"""
FUNCTIONS = """
SELECT DISTINCT p.proname
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname IN ('pg_catalog', 'information_schema')
ORDER BY 1
"""
SETTINGS = "SELECT name FROM pg_settings ORDER BY 1"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", type=Path, default=Path("/usr/lib/postgresql/15/bin"))
    parser.add_argument("--out", type=Path, default=TARGET)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pg-catalog-") as scratch:
        folder = Path(scratch)
        user = "postgres" if os.geteuid() == 0 else None
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        run_as = ["runuser", "-u", user, "--"] if user else []
        data, sockets = folder / "data", folder / "run"
        subprocess.run(
            [*run_as, str(args.bin / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
             "--no-sync", "-E", "UTF8", "--locale=C"],
            check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run([*run_as, "mkdir", str(sockets)], check=True)
        server = subprocess.Popen(
            [*run_as, str(args.bin / "postgres"), "-D", str(data), "-k", str(sockets),
             "-c", "listen_addresses=", "-c", "fsync=off", "-p", "5999"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            text = snapshot(sockets)
        finally:
            os.killpg(server.pid, signal.SIGINT)
            server.wait(timeout=30)
    args.out.write_text(text, encoding="utf-8")
    ruff = shutil.which("ruff") or str(ROOT / ".venv" / "bin" / "ruff")
    subprocess.run([ruff, "format", "--quiet", str(args.out)], check=False)
    print(f"wrote {args.out}")
    return 0


def snapshot(sockets: Path) -> str:
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = psycopg.connect(host=str(sockets), port=5999, user="postgres",
                                   dbname="postgres", autocommit=True)  # fmt: skip
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with conn:
        row = conn.execute("SHOW server_version").fetchone()
        version = str(row[0]).split()[0] if row else "unknown"  # "15.18 (Debian ...)"
        for name in EXTENSIONS:
            conn.execute(f'CREATE EXTENSION IF NOT EXISTS "{name}"'.encode())
        relations = conn.execute(RELATIONS).fetchall()
        ext_relations = conn.execute(EXTENSION_RELATIONS).fetchall()
        ext_functions = conn.execute(EXTENSION_FUNCTIONS).fetchall()
        functions = [r[0] for r in conn.execute(FUNCTIONS).fetchall()]
        settings = [r[0] for r in conn.execute(SETTINGS).fetchall()]
    out = [
        f'"""PostgreSQL {version}\'s system catalogs: what runbook SQL is checked against',
        "when the runbook's service has no schema to check it on (gate.sql_check).",
        "",
        "Generated by scripts/pg_catalog_snapshot.py from a fresh cluster with the contrib",
        "extensions runbooks query; do not edit. Columns are space-separated.",
        '"""',
        "",
        f"VERSION = {version!r}",
        "",
        "",
        "def _names(text: str) -> frozenset[str]:",
        "    return frozenset(text.split())",
        "",
        "",
        "# schema.relation -> its columns",
        "RELATIONS: dict[str, str] = {",
    ]
    for schema, name, cols in relations:
        out += [f'    "{schema}.{name}": (', *_wrapped(cols), "    ),"]
    out += ["}", "", "# relation -> (the extension it comes with, its columns)"]
    out += ["EXTENSION_RELATIONS: dict[str, tuple[str, str]] = {"]
    for ext, name, cols in ext_relations:
        out += [f'    "{name}": (', f"        {ext!r},", "        (", *_wrapped(cols, " " * 12)]
        out += ["        ),", "    ),"]
    out += ["}", "", "# function -> the extension it comes with"]
    out += ["EXTENSION_FUNCTIONS: dict[str, str] = {"]
    seen: set[str] = set()
    for ext, name in ext_functions:
        if name not in seen and name not in functions:
            seen.add(name)
            out.append(f"    {name!r}: {ext!r},")
    out += ["}", "", "# the built-in functions' names (pg_catalog, information_schema)"]
    out += ["FUNCTIONS = _names(", *_wrapped(functions, indent="    "), ")", ""]
    out += ["# the server's settings (pg_settings)"]
    out += ["SETTINGS = _names(", *_wrapped(settings, indent="    "), ")", ""]
    return "\n".join(out)


def _wrapped(names: list[str], indent: str = "        ") -> list[str]:
    """`names` space-separated, as string literals of at most ~80 characters that Python
    joins (each but the last ends with a space)."""
    lines: list[str] = []
    current = ""
    for name in names:
        if current and len(current) + len(name) + 1 > 80:
            lines.append(f"{indent}{current + ' '!r}")
            current = ""
        current = f"{current} {name}".strip()
    if current:
        lines.append(f"{indent}{current!r}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
