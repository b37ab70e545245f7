"""``python main.py classes DIR ACTION ...``: look at and clean up a project's classes.

Actions: ``list``; ``rename OLD NEW`` (the COCO id stays); ``merge SOURCE TARGET`` (SOURCE's
instances move to TARGET, whose id stays; SOURCE goes); ``delete NAME [--with-instances]``
(refused while instances use it, unless they go with it); ``recolour NAME '#rrggbb'``;
``keep NAME [--off]`` (keep an unused class in exports and training).

Each change is one transaction in the project's store (``<DIR>/.maskscope/project.db``);
``annotations.json`` is only rewritten by Save/Export. A folder without a store is imported from
its ``annotations.json`` (or labelme files) first, as opening it in the app would.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from engine.errors import AnnotationError

ACTIONS = ("list", "rename", "merge", "delete", "recolour", "keep")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "classes",
        help="list, rename, merge, delete, recolour or keep a project's classes",
        description="List or change a project's classes (stored in DIR/.maskscope/project.db).",
    )
    p.add_argument("project", type=Path, help="project folder")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="name, COCO id, instance count and whether the class is unused")
    rename = actions.add_parser("rename", help="rename a class (its COCO id and instances stay)")
    rename.add_argument("old")
    rename.add_argument("new")
    merge = actions.add_parser("merge", help="move SOURCE's instances to TARGET and remove SOURCE")
    merge.add_argument("source")
    merge.add_argument("target")
    delete = actions.add_parser("delete", help="remove a class (refused while instances use it)")
    delete.add_argument("name")
    delete.add_argument("--with-instances", action="store_true", help="delete its instances too")
    recolour = actions.add_parser("recolour", help="set the colour the app draws a class in")
    recolour.add_argument("name")
    recolour.add_argument("colour", help="'#rrggbb'")
    keep = actions.add_parser("keep", help="keep a class in exports and training even while unused")
    keep.add_argument("name")
    keep.add_argument("--off", action="store_true", help="stop keeping it (unused, it is left out again)")
    p.set_defaults(run=run)


def parse_colour(text: str) -> str:
    """``'#RRGGBB'`` -> ``'#rrggbb'``; anything else is a clear error."""
    if not _COLOUR.match(text.strip()):
        raise AnnotationError(f"colour {text!r}: give it as '#rrggbb' (six hex digits), e.g. '#ff8800'.")
    return text.strip().lower()


def format_table(rows: list[tuple[str, int, int, bool, str, bool]]) -> str:
    """The ``list`` output: one line per class, columns aligned."""
    head = ("class", "coco_id", "instances", "unused", "colour", "kept")
    cells = [head] + [
        (name, str(cid), str(count), "unused" if unused else "", colour or "-", "kept" if kept else "")
        for name, cid, count, unused, colour, kept in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _open(folder: Path):
    from engine.project import ANNOTATIONS_NAME, Project, store_path_for

    if not folder.is_dir():
        raise AnnotationError(f"{folder}: no such project folder.")
    if not store_path_for(folder).is_file() and not (folder / ANNOTATIONS_NAME).is_file():
        if not any(folder.glob("*.json")):
            raise AnnotationError(
                f"{folder}: not a MaskScope project (no .maskscope/project.db, {ANNOTATIONS_NAME} or labelme files)."
            )
    project = Project.open(folder)
    if project.opened_from:
        print(project.opened_from)
    return project


def _require(project, name: str) -> None:
    if name not in project.classes:
        known = ", ".join(project.classes.names) or "none"
        raise AnnotationError(f"no class {name!r} in {project.folder} (classes: {known}).")


def _check_new_name(project, name: str) -> None:
    from engine.annotations import IGNORE

    if not name.strip():
        raise AnnotationError("a class name cannot be empty.")
    if name == IGNORE:
        raise AnnotationError(f"{IGNORE!r} marks ignore regions; it cannot be a class name.")
    if name in project.classes:
        raise AnnotationError(f"class {name!r} already exists; use 'merge' to join two classes.")


def run(args: argparse.Namespace) -> int:
    project = _open(args.project)
    try:
        return _act(project, args)
    finally:
        project.close()


def _act(project, args: argparse.Namespace) -> int:
    action = args.action
    if action == "list":
        counts = project.class_counts()
        rows = [
            (c.name, c.id, counts.get(c.name, 0), counts.get(c.name, 0) == 0, c.colour, c.keep) for c in project.classes
        ]
        print(format_table(rows) if rows else f"{project.folder}: no classes yet.")
        return 0
    if action == "rename":
        _require(project, args.old)
        _check_new_name(project, args.new)
        project.rename_class(args.old, args.new)
        print(f"renamed {args.old!r} to {args.new!r} (COCO id {project.classes.id_of(args.new)})")
    elif action == "merge":
        _require(project, args.source)
        _require(project, args.target)
        undo = project.merge_classes(args.source, args.target)
        print(f"merged {args.source!r} into {args.target!r}: {len(undo.moved)} instances moved")
    elif action == "delete":
        _require(project, args.name)
        undo = project.delete_class(args.name, delete_instances=args.with_instances)
        gone = f" and its {len(undo.rows)} instances" if undo.rows else ""
        print(f"deleted class {args.name!r}{gone}")
    elif action == "recolour":
        _require(project, args.name)
        colour = parse_colour(args.colour)
        project.update_class(args.name, colour=colour)
        print(f"{args.name!r} is drawn in {colour}")
    elif action == "keep":
        _require(project, args.name)
        project.update_class(args.name, keep=not args.off)
        state = "no longer kept (left out of exports and training while unused)" if args.off else "kept"
        print(f"{args.name!r} is {state}")
    project.flush()
    if project.errors:
        raise AnnotationError(f"{project.folder}: the change could not be written ({project.errors[-1]}).")
    return 0
