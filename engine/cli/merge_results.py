"""``python main.py merge-results SHARD.json... --out results.json``: join ``predict --shard`` runs.

Each SHARD is a results file written by ``predict`` (its ``.images.json`` beside it). The shards
must come from one image list and one model: image ids (ids of the full list) and files may not
repeat across shards, categories and model must be the same, and every result must belong to an
image its shard lists; anything else is refused with the first conflict named. ``predict`` under
``torchrun`` uses the same merge for its ranks' shares.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from engine.errors import DataError

IMAGES_SUFFIX = ".images.json"  # engine.coco_results.IMAGES_SUFFIX (not imported: --help stays light)


@dataclass
class Shard:
    """One predict output: the results list and its image list (the ``.images.json`` payload)."""

    name: str
    results: list[dict]
    listing: dict
    images: list[dict] = field(init=False)

    def __post_init__(self) -> None:
        images = self.listing.get("images")
        if not isinstance(self.results, list) or not isinstance(images, list):
            raise DataError(f"{self.name}: not a predict output (a results list with an image list beside it)")
        for im in images:
            if not isinstance(im, dict) or not isinstance(im.get("id"), int):
                raise DataError(f"{self.name}: image list entry {im!r} has no integer 'id'")
        self.images = images

    @property
    def span(self) -> tuple[int, int, int] | None:
        """(start, stop, total) of the full image list this shard covered, when recorded."""
        s = self.listing.get("shard")
        if isinstance(s, dict) and all(isinstance(s.get(k), int) for k in ("start", "stop", "total")):
            return s["start"], s["stop"], s["total"]
        return None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "merge-results",
        help="join the results files of several predict --shard runs into one",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("shards", nargs="+", metavar="SHARD", help="results JSON files written by predict")
    p.add_argument("--out", required=True, help="merged results JSON to write (its .images.json beside it)")
    p.set_defaults(run=run)


def results_path(path: str | Path) -> Path:
    """A shard named by its image list (x.images.json) means its results file (x.json)."""
    path = Path(path)
    if path.name.endswith(IMAGES_SUFFIX):
        return path.with_name(path.name[: -len(IMAGES_SUFFIX)] + ".json")
    return path


def images_path(results: Path) -> Path:
    """``x.json`` -> ``x.images.json`` (as engine.coco_results.images_path_for)."""
    return results.with_name((results.stem if results.suffix else results.name) + IMAGES_SUFFIX)


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"{path}: {what} not found") from exc
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DataError(f"{path}: not a readable {what} ({type(exc).__name__}: {exc})") from exc


def read_shard(path: str | Path) -> Shard:
    results = results_path(path)
    entries = _read_json(results, "results file")
    listing = _read_json(images_path(results), "image list of a predict output")
    if not isinstance(listing, dict):
        raise DataError(f"{images_path(results)}: an image list must be a JSON object")
    return Shard(str(results), entries, listing)


def merge_shards(shards: list[Shard]) -> tuple[list[dict], list[dict], list[dict], dict]:
    """(results, images, categories, extra) of the union; DataError on overlap or inconsistency."""
    if not shards:
        raise DataError("no shards to merge")
    first = shards[0]
    owner: dict[int, str] = {}
    paths: dict[str, tuple[int, str]] = {}
    for shard in shards:
        for key in ("categories", "model", "weights"):
            if _comparable(shard.listing, key) != _comparable(first.listing, key):
                raise DataError(
                    f"{shard.name} and {first.name} differ in their {key}: shards of one run share the model "
                    "and classes; refusing to merge"
                )
        ids = set()
        for im in shard.images:
            image_id, where = im["id"], str(im.get("path") or im.get("file_name"))
            if image_id in owner:
                raise DataError(
                    f"image id {image_id} ({im.get('file_name')}) is in both {owner[image_id]} and {shard.name}: "
                    "the shards overlap; refusing to merge"
                )
            if where in paths:
                other_id, other = paths[where]
                raise DataError(
                    f"{where} is image {other_id} in {other} but image {image_id} in {shard.name}: "
                    "the shards come from different image lists; refusing to merge"
                )
            owner[image_id], paths[where] = shard.name, (image_id, shard.name)
            ids.add(image_id)
        stray = sorted({r.get("image_id") for r in shard.results if isinstance(r, dict)} - ids, key=str)
        if stray or not all(isinstance(r, dict) for r in shard.results):
            raise DataError(f"{shard.name} has results for image ids {stray[:5]} missing from its own image list")
    extra = {
        "model": first.listing.get("model"),
        "weights": first.listing.get("weights"),
        "failed": [f for s in shards for f in s.listing.get("failed") or []],
    }
    span = _union_span(shards)
    if span is not None:
        extra["shard"] = span
    results = sorted((r for s in shards for r in s.results), key=lambda r: r["image_id"])  # stable per image
    images = sorted((im for s in shards for im in s.images), key=lambda im: im["id"])
    return results, images, list(first.listing.get("categories") or []), extra


def _comparable(listing: dict, key: str):
    """The part of ``key`` that must agree across shards; the model's description holds the local
    path of the weights, which may differ between machines (``weights`` compares their content)."""
    value = listing.get(key)
    if key == "model" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "description"}
    return value


def _union_span(shards: list[Shard]) -> dict | None:
    """The merged shard range when every shard recorded one; overlapping ranges, or ranges of lists of
    different lengths, are refused. None when a shard has no record (older files)."""
    spans: list[tuple[tuple[int, int, int], str]] = []
    for shard in shards:
        span = shard.span
        if span is None:
            return None
        spans.append((span, shard.name))
    totals = {span[2] for span, _ in spans}
    if len(totals) > 1:
        raise DataError(f"the shards come from image lists of different lengths ({sorted(totals)}); refusing to merge")
    ordered = sorted((span, name) for span, name in spans if span[1] > span[0])
    for (a, name_a), (b, name_b) in pairwise(ordered):
        if b[0] < a[1]:
            raise DataError(
                f"{name_a} covers images {a[0]}:{a[1]} and {name_b} {b[0]}:{b[1]}: the shards overlap; "
                "refusing to merge"
            )
    if not ordered:
        return None
    gaps = [f"{a[1]}:{b[0]}" for (a, _), (b, _) in pairwise(ordered) if b[0] > a[1]]
    start, stop, total = ordered[0][0][0], ordered[-1][0][1], ordered[0][0][2]
    union: dict = {"start": start, "stop": stop, "total": total}
    if gaps:
        union["missing"] = gaps
    return union


def run(args: argparse.Namespace) -> int:
    from engine import coco_results

    out = Path(args.out)
    names = [results_path(p) for p in args.shards]
    if len({p.resolve() for p in names}) != len(names):
        raise DataError("the same shard is named twice; refusing to merge")
    if out.resolve() in {p.resolve() for p in names}:
        raise DataError(f"--out {out} is one of the shards; write the merged results to a new file")
    shards = [read_shard(p) for p in names]
    results, images, cats, extra = merge_shards(shards)
    written, images_out = coco_results.write_results(out, results, images, cats, extra)
    span = extra.get("shard")
    if span and span.get("missing"):
        print(f"note: no shard covers images {', '.join(span['missing'])} of the list", file=sys.stderr)
    print(f"merged {len(shards)} shards: {len(results)} detections on {len(images)} images -> {written} ({images_out})")
    return 0
