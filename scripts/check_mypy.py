"""Hold a package's mypy error count at or below its recorded baseline (the aim is zero).

    python scripts/check_mypy.py app            # report; exit 1 when the count rose above the baseline
    python scripts/check_mypy.py app --update   # record the current count (after fixing errors)

mypy runs with the settings of pyproject.toml's [tool.mypy] on the named folder; only errors inside
that folder count (modules it imports are checked on their own). The baseline lives in
scripts/mypy_baseline.json, one count per folder; `make check` runs this for the app.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = Path(__file__).with_name("mypy_baseline.json")
ERROR_LINE = re.compile(r"^(?P<path>[^:\s]+\.py):\d+(?::\d+)?: error: ")


def count_errors(folder: str) -> tuple[int, list[str]]:
    """(number of errors in ``folder``, their lines) from one mypy run over it."""
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--show-error-codes", folder],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode not in (0, 1):  # 2: mypy itself failed (bad config, crash)
        raise SystemExit(f"mypy failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    prefix = folder.rstrip("/") + "/"
    lines = [
        line
        for line in proc.stdout.splitlines()
        if (m := ERROR_LINE.match(line)) and Path(m["path"]).as_posix().startswith(prefix)
    ]
    return len(lines), lines


def load_baseline() -> dict[str, int]:
    return json.loads(BASELINE.read_text(encoding="utf-8")) if BASELINE.is_file() else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="package folder to check, e.g. app")
    parser.add_argument("--update", action="store_true", help="record the current count as the baseline")
    args = parser.parse_args(argv)
    folder = args.folder.rstrip("/")
    if not (ROOT / folder).is_dir():
        parser.error(f"no folder {folder!r} in {ROOT}")

    count, lines = count_errors(folder)
    baseline = load_baseline()
    if args.update:
        baseline[folder] = count
        BASELINE.write_text(json.dumps(baseline, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"mypy {folder}: recorded baseline {count} errors in {BASELINE.name}")
        return 0
    if folder not in baseline:
        print(f"mypy {folder}: {count} errors and no baseline; record one with --update", file=sys.stderr)
        return 1
    allowed = baseline[folder]
    print(f"mypy {folder}: {count} errors (baseline {allowed})")
    if count > allowed:
        print("\n".join(lines), file=sys.stderr)
        print(f"mypy {folder}: {count - allowed} more errors than the baseline; fix them", file=sys.stderr)
        return 1
    if count < allowed:
        print(f"mypy {folder}: below the baseline; lower it with: python scripts/check_mypy.py {folder} --update")
    return 0


if __name__ == "__main__":
    sys.exit(main())
