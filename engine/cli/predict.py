"""``python main.py predict PATH... --out results.json``: segment images, write COCO results JSON.

PATHs are image files or folders (their images, sorted naturally; ``--recursive`` for subfolders).
Unreadable files are skipped and listed on stderr at the end; the exit code is 0 when at least one
image was segmented. ``--shard START:STOP`` runs on a slice of the sorted list (image ids stay those
of the full list, so the shards' results can be concatenated).
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
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="segment images or folders, write COCO results JSON",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files and/or folders of images")
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
    p.add_argument("--out", required=True, help="results JSON to write (a COCO results list)")
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


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine import coco_results
    from engine.imageio import load_image
    from engine.models import create_segmenter

    if not 0.0 <= args.score_thresh <= 1.0:
        raise MaskScopeError(f"--score-thresh must be between 0 and 1, got {args.score_thresh}.")
    images = collect_images(args.paths, args.recursive)
    if not images:
        raise ImageLoadError(f"No images found in {', '.join(args.paths)}.")
    indices = _shard(args.shard, len(images))
    if len(indices) == 0:
        raise MaskScopeError(f"--shard {args.shard} selects none of the {len(images)} images.")

    device = None if args.device == "auto" else args.device
    segmenter = create_segmenter(args.model, args.config, args.weights, device, None, args.score_thresh)
    if segmenter.architecture != args.model:
        print(f"note: {args.weights} is a {segmenter.architecture} checkpoint; using it.", file=sys.stderr)
    category_ids = segmenter.category_ids

    results: list[dict] = []
    listed: list[dict] = []
    failed: list[dict] = []
    bar = tqdm(indices, unit="image", disable=args.no_progress or len(indices) < 2, file=sys.stderr)
    for index in bar:
        path, file_name = images[index]
        image_id = index + 1
        try:
            loaded = load_image(path)
        except ImageLoadError as exc:
            failed.append({"path": str(path), "error": str(exc)})
            continue
        pred = segmenter.predict(loaded.rgb)
        results.extend(coco_results.prediction_results(pred, image_id, category_ids))
        h, w = pred.image_size
        listed.append({"id": image_id, "file_name": file_name, "width": w, "height": h, "path": str(path)})

    for fail in failed:
        print(f"skipped: {fail['error']}", file=sys.stderr)
    if not listed:
        raise ImageLoadError(f"None of the {len(indices)} images could be read; nothing written.")
    extra = {"model": {**segmenter.metadata(), "description": segmenter.describe()}, "failed": failed}
    cats = coco_results.categories(segmenter.class_names, category_ids)
    out, images_out = coco_results.write_results(args.out, results, listed, cats, extra)
    print(f"wrote {len(results)} detections on {len(listed)} images to {out} (image list: {images_out})")
    if failed:
        print(f"{len(failed)} of {len(indices)} images could not be read (listed above).", file=sys.stderr)
    return 0
