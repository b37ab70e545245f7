"""DistributedDataParallel training: two CPU processes under torchrun (gloo) end with identical
weights that both moved away from the start. This file is also the worker torchrun launches."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from engine.synthetic import write_coco_dataset

ROOT = Path(__file__).resolve().parents[1]


def _worker(data_json: str, out: str, bn: str = "train") -> None:
    from test_training import TinySegmenter  # the tests folder is on sys.path when run as a script

    from engine.training.data import load_coco_source
    from engine.training.ddp import init_distributed, shutdown
    from engine.training.trainer import Trainer

    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    assert ctx is not None and ctx.world_size == 2 and ctx.backend == "gloo"
    src = load_coco_source(data_json)
    torch.manual_seed(100 + ctx.rank)  # different init per rank: DDP must broadcast rank 0's
    seg = TinySegmenter(src.classes)
    cfg = config(bn == "train")
    res = Trainer(seg, src, cfg, Path(out) / "run", dist=ctx).fit()
    state = {k: v.contiguous() for k, v in seg.model.state_dict().items()}
    save_file(state, str(Path(out) / f"rank{ctx.rank}.safetensors"))
    # 8 training images: each rank sees 4 per epoch, in 2 steps
    (Path(out) / f"rank{ctx.rank}.txt").write_text(f"{res.iterations} {len(seg.model.state_dict())}")
    shutdown(ctx)


def config(train_bn: bool):
    from engine.training.trainer import TrainConfig

    return TrainConfig(epochs=2, batch_size=2, lr=0.05, warmup_iters=1, val_fraction=0.2, seed=5, train_bn=train_bn)


def _torchrun(data: Path, out: Path, bn: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(Path(__file__)), "--worker", str(data), str(out), bn,
    ]  # fmt: skip
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def test_two_cpu_processes_end_with_identical_weights(tmp_path):
    data = write_coco_dataset(tmp_path / "data", 10, 48, ("circle", "square"), seed=4)
    _torchrun(data, tmp_path, "train")
    a = load_file(str(tmp_path / "rank0.safetensors"))
    b = load_file(str(tmp_path / "rank1.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert (tmp_path / "rank0.txt").read_text().split()[0] == "4"  # 2 epochs x 2 steps per rank
    # the weights trained: they differ from rank 0's initialisation
    torch.manual_seed(100)
    sys.path.insert(0, str(Path(__file__).parent))
    from test_training import TinySegmenter

    init = TinySegmenter(["circle", "square"]).model.state_dict()
    assert not torch.equal(init["head.weight"], a["head.weight"])
    # rank 0 alone wrote the checkpoints and the final weights
    assert (tmp_path / "run" / "model_final.safetensors").is_file()
    assert (tmp_path / "run" / "epoch_002.safetensors").is_file()


def test_two_processes_equal_one_process_on_the_same_global_batch(tmp_path):
    """With BatchNorm on running statistics and a loss that is a mean over equally sized images, a
    DDP step (gradients averaged over the ranks) is the step of one process on both ranks' images."""
    from engine.training.data import load_coco_source
    from engine.training.trainer import Trainer

    data = write_coco_dataset(tmp_path / "data", 10, 48, ("circle", "square"), seed=4)
    _torchrun(data, tmp_path, "eval")
    ddp = load_file(str(tmp_path / "rank0.safetensors"))

    class GlobalBatch(Trainer):
        def _epoch_batches(self, epoch: int) -> list[list[int]]:
            """Step k takes rank 0's and rank 1's k-th batches (DistributedSampler, 2 replicas)."""
            halves = []
            for rank in (0, 1):
                sampler = torch.utils.data.DistributedSampler(self.train_set, 2, rank, shuffle=True, seed=5)
                sampler.set_epoch(epoch)
                order = list(sampler)
                halves.append([order[i : i + 2] for i in range(0, len(order), 2)])
            return [a + b for a, b in zip(*halves, strict=True)]

    sys.path.insert(0, str(Path(__file__).parent))
    from test_training import TinySegmenter

    torch.manual_seed(100)  # rank 0's initialisation, which DDP gave both ranks
    seg = TinySegmenter(["circle", "square"])
    init = {k: v.clone() for k, v in seg.model.state_dict().items()}
    GlobalBatch(seg, load_coco_source(data), config(False)).fit()
    one = seg.model.state_dict()
    assert one.keys() == ddp.keys()
    for k, v in ddp.items():
        assert torch.allclose(one[k].float(), v.float(), rtol=1e-4, atol=1e-6), k
    # far closer than the distance travelled (the check above is not loose enough to pass anyway)
    moved = (ddp["head.weight"] - init["head.weight"]).abs().max()
    assert (one["head.weight"] - ddp["head.weight"]).abs().max() < 1e-3 * moved


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--worker":
    _worker(sys.argv[2], sys.argv[3], sys.argv[4])
