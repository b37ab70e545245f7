"""Refresh the GUI pixel-snapshot references after an intended change of the looks.

    python scripts/update_snapshots.py            # rewrite every reference in tests/gui/snapshots
    python scripts/update_snapshots.py -k roi     # only the snapshot tests matching "roi"

Runs tests/gui/test_snapshots.py offscreen with ``--update-snapshots`` (the tests then write the
references instead of comparing), then once more normally to show they pass. Look at the
changed PNGs (``git status tests/gui/snapshots``) before committing them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = "tests/gui/test_snapshots.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", dest="keyword", help="only the snapshot tests matching this pytest -k expression")
    args = parser.parse_args(argv)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env.pop("QT_SCALE_FACTOR", None)  # references are at device pixel ratio 1
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TESTS]
    if args.keyword:
        base += ["-k", args.keyword]
    for extra in (["--update-snapshots"], []):
        code = subprocess.call(base + extra, cwd=ROOT, env=env)
        if code != 0:
            return code
    print(f"references in {ROOT / 'tests/gui/snapshots'}: look at them, then commit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
