"""``python main.py export PROJECT --out FILE [--polygons]``: write a project's annotations as COCO JSON.

PROJECT is the project folder (its store ``.maskscope/project.db``; a folder with only an
``annotations.json`` is imported into a new store first). Unused classes are left out unless kept.
The written file is checked by loading it with pycocotools.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path

from engine.errors import AnnotationError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a project's annotations as COCO instances JSON",
        description="Export a project's annotations as a COCO instances JSON (RLE masks by default).",
    )
    p.add_argument("project", help="project folder (or its annotations JSON file)")
    p.add_argument("--out", required=True, help="COCO JSON file to write (written atomically)")
    p.add_argument(
        "--polygons",
        action="store_true",
        help="write polygons instead of RLE; masks with holes stay RLE (COCO polygons cannot hold holes)",
    )
    p.add_argument("--no-check", action="store_true", help="skip loading the result with pycocotools")
    p.set_defaults(run=run)


def check_with_pycocotools(path: Path, expected_annotations: int) -> None:
    """Load ``path`` with pycocotools' COCO (as evaluation tools will) and compare counts."""
    from pycocotools.coco import COCO

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints progress
            coco = COCO(str(path))
    except Exception as exc:  # pycocotools raises assorted types on bad input
        raise AnnotationError(f"{path}: pycocotools cannot load the exported file ({exc}).") from exc
    if len(coco.anns) != expected_annotations:
        raise AnnotationError(
            f"{path}: pycocotools sees {len(coco.anns)} annotations, {expected_annotations} were written."
        )


def run(args: argparse.Namespace) -> int:
    from engine.project import Project

    source = Path(args.project)
    project = Project.open(source)
    try:
        if project.instance_count() == 0:
            raise AnnotationError(f"{project.folder}: the project has no annotations to export.")
        out = Path(args.out).absolute()
        stats = project.export(out, "polygons" if args.polygons else "rle")
    finally:
        project.close()
    if not args.no_check:
        check_with_pycocotools(out, stats.annotations)
    print(f"wrote {out}: {stats.summary()} in {stats.seconds:.2f} s")
    return 0
