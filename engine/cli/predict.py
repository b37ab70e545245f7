"""``python main.py predict PATH... --out results.json``: segment images, write COCO results JSON.

PATHs are image files or folders (their images, sorted naturally; ``--recursive`` for subfolders).
Unreadable files are skipped and listed on stderr at the end; the exit code is 0 when at least one
image was segmented. ``--shard START:STOP`` runs on a slice of the sorted list (image ids stay those
of the full list; ``merge-results`` joins the shards' files). Under ``torchrun`` every process
takes its share of the list (by RANK and WORLD_SIZE) and rank 0 writes the merged results.
``--project DIR`` also stores the run in the project's store (a new prediction run the window
shows for review, each image committed as it is done); PATHs then default to DIR.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.errors import ImageLoadError, MaskScopeError
from engine.models import ARCHITECTURES

HELP = """\
Segment images and write the detections as a COCO results file: OUT is a JSON list of
{image_id, category_id, bbox [x,y,w,h], score, segmentation (compressed RLE)}, the format
pycocotools' COCO.loadRes and COCOeval read. Beside it, OUT with the suffix .images.json
(results.json -> results.images.json) lists the images ({id, file_name, width, height, path};
ids 1..N in input order), the categories ({id, name}) and the model, so the results can be
matched with ground truth. Both files are written atomically.

Under torchrun (torchrun --nproc_per_node N [--nnodes M ...] main.py predict ...) each process
segments its contiguous share of the image list and rank 0 writes the one merged OUT; after
separate --shard runs, `merge-results` joins their files.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="segment images or folders, write COCO results JSON",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="image files and/or folders of images")
    p.add_argument("--model", choices=sorted(ARCHITECTURES), default="maskrcnn", help="architecture")
    p.add_argument("--config", help="model config (e.g. maskrcnn_resnet50_fpn, maskrcnn_r18_fpn)")
    p.add_argument(
        "--weights",
        help="weight file (.pth, or our .safetensors checkpoint, whose metadata sets model and classes), "
        "'random' for random init; default: the config's published COCO weights",
    )
    p.add_argument(
        "--score-thresh",
        type=float,
        default=0.05,
        help="keep detections scoring above this (default 0.05, as in COCO evaluation; 0 keeps all)",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, or cuda[:N]")
    p.add_argument("--recursive", action="store_true", help="also look for images in subfolders")
    p.add_argument("--shard", metavar="START:STOP", help="only images START..STOP-1 of the sorted list")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--out", help="results JSON to write (a COCO results list); needed unless --project")
    p.add_argument(
        "--project",
        metavar="DIR",
        help="store the predictions as a new run in this project (its images; PATHs must lie inside it)",
    )
    p.set_defaults(run=run)


def collect_images(paths: list[str], recursive: bool = False) -> list[tuple[Path, str]]:
    """(path, file_name) for every image: folders expanded (file_name relative to the folder)."""
    from engine.imageio import list_images

    found: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend((p, p.relative_to(path).as_posix()) for p in list_images(path, recursive=recursive))
        elif path.exists():
            found.append((path, path.name))  # an explicit file is tried whatever its suffix
        else:
            raise ImageLoadError(f"No such file or folder: {path}")
    return found


def _shard(spec: str | None, count: int) -> range:
    if not spec:
        return range(count)
    try:
        start_s, stop_s = spec.split(":")
        start = int(start_s) if start_s else 0
        stop = int(stop_s) if stop_s else count
    except ValueError as exc:
        raise MaskScopeError(f"--shard wants START:STOP (e.g. 0:100), got {spec!r}.") from exc
    return range(count)[start:stop]


def _device(requested: str, ctx) -> str | None:
    """The device of this process: under torchrun a CUDA rank takes GPU LOCAL_RANK."""
    import torch

    device = None if requested == "auto" else requested
    if ctx is not None and torch.cuda.is_available() and device in (None, "cuda"):
        return f"cuda:{ctx.local_rank}"
    return device


def run(args: argparse.Namespace) -> int:
    from engine.training.ddp import init_distributed, shard_bounds, shutdown

    if not 0.0 <= args.score_thresh <= 1.0:
        raise MaskScopeError(f"--score-thresh must be between 0 and 1, got {args.score_thresh}.")
    if not args.out and not args.project:
        raise MaskScopeError("Give --out (a results JSON) or --project (a project to store the run in), or both.")
    if args.project and not Path(args.project).is_dir():
        raise MaskScopeError(f"--project {args.project}: no such folder.")
    if not args.paths:
        if not args.project:
            raise MaskScopeError("Give the images to segment (files or folders), or --project DIR.")
        args.paths = [args.project]
    images = collect_images(args.paths, args.recursive)
    if not images:
        raise ImageLoadError(f"No images found in {', '.join(args.paths)}.")
    if args.project:
        root = Path(args.project).resolve()
        outside = [str(p) for p, _ in images if not p.resolve().is_relative_to(root)]
        if outside:
            raise MaskScopeError(
                f"--project {args.project}: {len(outside)} image(s) are not inside the project, e.g. {outside[0]}; "
                "nothing was run."
            )
    indices = _shard(args.shard, len(images))
    if len(indices) == 0:
        raise MaskScopeError(f"--shard {args.shard} selects none of the {len(images)} images.")

    # gloo whatever the device: the ranks only exchange their results (Python objects), once at the
    # end, so the wait for the slowest rank may be long
    ctx = init_distributed(args.device, timeout_s=24 * 3600.0, backend="gloo")
    if ctx is not None and args.project:
        shutdown(ctx)
        raise MaskScopeError(
            "--project is for one process: under torchrun, write --out and import the merged results "
            "with one `predict --project` run per machine instead."
        )
    try:
        mine = indices
        if ctx is not None:
            mine = indices[slice(*shard_bounds(len(indices), ctx.rank, ctx.world_size))]
        name = (args.out or args.project) if ctx is None or ctx.is_main else f"rank {ctx.rank}"
        shard = _predict(args, images, mine, _device(args.device, ctx), name)
        if ctx is None:
            shards = [shard]
        else:
            import torch.distributed as dist

            gathered: list | None = [None] * ctx.world_size if ctx.is_main else None
            dist.gather_object(shard, gathered, dst=0)
            if not ctx.is_main:
                return 0
            shards = list(gathered or [])
        return _write(args, shards, len(indices))
    finally:
        shutdown(ctx)


def _predict(args: argparse.Namespace, images: list[tuple[Path, str]], indices: range, device, name: str):
    """Segment ``images[i]`` for i in ``indices``; a Shard (results + image list) of ids i + 1.
    Only the process that writes OUT (``name`` == OUT) shows progress and notes."""
    quiet = name != (args.out or args.project)
    from tqdm import tqdm

    from engine import coco_results
    from engine.cli.merge_results import Shard
    from engine.imageio import load_image
    from engine.models import create_segmenter

    segmenter = create_segmenter(args.model, args.config, args.weights, device, None, args.score_thresh)
    if segmenter.architecture != args.model and not quiet:
        print(f"note: {args.weights} is a {segmenter.architecture} checkpoint; using it.", file=sys.stderr)
    category_ids = segmenter.category_ids
    store = _ProjectRun(args, segmenter, device) if args.project else None

    results: list[dict] = []
    listed: list[dict] = []
    failed: list[dict] = []
    bar = tqdm(indices, unit="image", disable=args.no_progress or quiet or len(indices) < 2, file=sys.stderr)
    for index in bar:
        path, file_name = images[index]
        image_id = index + 1
        try:
            loaded = load_image(path)
        except ImageLoadError as exc:
            failed.append({"path": str(path), "error": str(exc)})
            continue
        pred = segmenter.predict(loaded.rgb)
        if store is not None:
            store.add(path, pred)
        results.extend(coco_results.prediction_results(pred, image_id, category_ids))
        h, w = pred.image_size
        listed.append({"id": image_id, "file_name": file_name, "width": w, "height": h, "path": str(path)})

    if store is not None:
        store.close()
    listing = {
        "images": listed,
        "categories": coco_results.categories(segmenter.class_names, category_ids),
        "model": {**segmenter.metadata(), "description": segmenter.describe()},
        "weights": weights_fingerprint(args.weights, segmenter.weights_source),
        "failed": failed,
        "shard": {"start": indices.start, "stop": indices.stop, "total": len(images)},
    }
    return Shard(name, results, listing)


class _ProjectRun:
    """``--project``: one new prediction run in the project's store, each image committed when done."""

    def __init__(self, args: argparse.Namespace, segmenter, device) -> None:
        from engine.project import Project

        self.project = Project.open(args.project)
        fingerprint = weights_fingerprint(args.weights, segmenter.weights_source)
        settings = {
            "class_names": list(segmenter.class_names),
            "score_threshold": args.score_thresh,
            "architecture": segmenter.architecture,
            "config": args.config,
            "device": str(device),
            "source": "command line",
        }
        self.run_id = self.project.add_run(
            segmenter.describe(), settings, str(args.weights or segmenter.weights_source), fingerprint.get("sha256", "")
        )
        self.stored = 0

    def add(self, path: Path, prediction) -> None:
        try:
            name = path.resolve().relative_to(self.project.folder.resolve()).as_posix()
        except ValueError:  # checked before the run started (run()); kept as a guard
            raise MaskScopeError(f"{path} is not inside the project {self.project.folder}.") from None
        self.project.add_predictions(self.run_id, name, prediction)
        self.stored += 1

    def close(self) -> None:
        print(f"stored run #{self.run_id} ({self.stored} images) in {self.project.db_path}", file=sys.stderr)
        self.project.close()


def weights_fingerprint(weights: str | None, source: str) -> dict:
    """What the weights were, comparable across machines: a weight file by name and SHA-256 (its
    folder may differ from machine to machine), else the source text (e.g. torchvision's COCO)."""
    import hashlib

    path = Path(weights) if weights else None
    if path is None or not path.is_file():
        return {"source": source}
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"file": path.name, "sha256": digest.hexdigest()}


def _write(args: argparse.Namespace, shards: list, count: int) -> int:
    """Merge the processes' shards (one without torchrun) and write OUT and its image list."""
    from engine import coco_results
    from engine.cli.merge_results import merge_shards

    results, listed, cats, extra = merge_shards(shards)
    for fail in extra["failed"]:
        print(f"skipped: {fail['error']}", file=sys.stderr)
    if not listed:
        raise ImageLoadError(f"None of the {count} images could be read; nothing written.")
    if not args.out:
        return 0
    out, images_out = coco_results.write_results(args.out, results, listed, cats, extra)
    print(f"wrote {len(results)} detections on {len(listed)} images to {out} (image list: {images_out})")
    if extra["failed"]:
        print(f"{len(extra['failed'])} of {count} images could not be read (listed above).", file=sys.stderr)
    return 0
