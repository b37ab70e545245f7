"""``python main.py import FILE --images DIR [--project-file PATH]``: merge annotations into a project.

FILE is a COCO instances JSON, a labelme JSON, or a folder of labelme JSONs (detected from the
content). Everything is validated before anything changes; the import is then one transaction of
the project store (``DIR/.maskscope/project.db``), and the project's COCO file is written too.
Images the project does not have are reported and skipped; instances identical to ones the
project already has (same image, class and mask) are skipped and counted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.errors import AnnotationError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "import",
        help="import COCO or labelme annotations into a project",
        description="Import COCO instances JSON or labelme JSON (a file or a folder) into a project's "
        "annotations file.",
    )
    p.add_argument("file", help="COCO JSON, labelme JSON, or a folder of labelme JSON files")
    p.add_argument("--images", required=True, help="the project's image folder")
    p.add_argument(
        "--project-file",
        default=None,
        help="COCO file the project is saved to after the import (default: IMAGES/annotations.json)",
    )
    p.add_argument(
        "--replace",
        action="store_true",
        help="replace the existing annotations of each imported image instead of adding to them",
    )
    p.add_argument("--dry-run", action="store_true", help="validate and report; write nothing")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.project import Project

    images = Path(args.images)
    if not images.is_dir():
        raise AnnotationError(f"{images}: the image folder does not exist.")
    project = Project.open(images)
    if project.opened_from:
        print(project.opened_from)
    try:
        plan = project.plan_import(args.file)
        if not plan.images and plan.missing_images:
            raise AnnotationError(
                f"{args.file}: none of its {len(plan.missing_images)} images were found in {images}; "
                "nothing was imported."
            )
        if args.dry_run:
            print(f"would import {plan.instance_count} instances of {len(plan.images)} images from {args.file}")
            print("dry run: nothing written")
            return 0
        summary = project.apply_import(plan, replace=args.replace)
        print(summary.summary())
        path = project.save(args.project_file)
        print(f"stored in {project.db_path}; saved {path} ({project.instance_count()} instances)")
    finally:
        project.close()
    return 0
