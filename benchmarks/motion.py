"""Does a motion output help? Train two mask forecasters side by side for the same steps, one
without and one with the motion head (`compact-masks` against `compact-masks-motion`), on the
true masks of generated train videos, and score frame 22 on val from the true masks of frames
1-11, beside copying frame 11's mask. Also how far the learned displacement moves objects.

    python benchmarks/motion.py --cache /tmp/tq --steps 200            # masks, 96x144 windows
    python benchmarks/motion.py --cache /tmp/tq --steps 200 --presets compact-masks-motion

Scoring on true input masks isolates forecasting from segmentation (no segmenter needed). The
runs of one invocation share the data, seed and recipe; they run one after the other, or side
by side with --parallel (one thread each).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.data import prepare_shards, run_records  # noqa: E402
from benchmarks.machine import machine  # noqa: E402


def run_name(preset: str, args: argparse.Namespace) -> str:
    """The run folder (and row) of a preset: a motion preset names its --flow-weight."""
    return f"{preset}-fw{args.flow_weight:g}" if "motion" in preset else preset


def train_one(args: argparse.Namespace, shards: Path, preset: str) -> dict:
    """Train `preset` for args.steps steps on train's true masks -> its summary."""
    import shutil

    from convrnn_video.train.config import TrainConfig
    from convrnn_video.train.loop import run_training

    run = args.cache / "motion-runs" / run_name(preset, args)
    shutil.rmtree(run, ignore_errors=True)
    cfg = TrainConfig(
        task="masks", shards=str(shards), out=str(run), preset=preset, train_splits=("train",),
        val_split="", max_steps=args.steps, epochs=10_000, batch_size=args.batch_size,
        lr=args.lr, lr_schedule="cosine", warmup_steps=args.warmup_steps, crop=tuple(args.crop),
        ss_steps=args.ss_steps, seed=args.seed, progress=False, log_every=10, early_stop=0,
        threads=args.threads, flow_weight=args.flow_weight,
    )  # fmt: skip
    t = time.perf_counter()
    run_training(cfg)
    seconds = time.perf_counter() - t
    train = run_records(run)["train"]
    return {
        "ckpt": str(run / "last.pt"),
        "steps": train[-1]["step"] if train else 0,
        "train_seconds": round(seconds, 1),
        "train_samples_per_s": round(statistics.median(r["samples_per_s"] for r in train), 3)
        if train
        else None,
        "loss_last": round(train[-1]["loss"], 4) if train else None,
    }


def _mask_model(path: str, device):
    """A masks or tracks checkpoint's model (both map input masks to class scores), read
    once."""
    from convrnn_video.runtime.checkpoint import checkpoint_task, load_model

    model, _, payload = load_model(path, device)
    if checkpoint_task(payload) not in ("masks", "tracks"):
        sys.exit(f"error: {path} is a {checkpoint_task(payload)} checkpoint; expected a masks "
                 "or tracks one")  # fmt: skip
    return model


def score(ckpts: dict[str, str], shards: Path, carriers: dict[str, str] | None = None) -> dict:
    """Jaccard of frame 22 (and mean over 12-22) from true input masks, per model, copying
    frame 11's mask and extrapolating its objects (convrnn/extrapolate.py). `carriers`: frames
    models with a motion output whose predicted displacement carries frame 11's mask
    (convrnn/motion.py carry_mask), scored as "carry:<name>"."""
    import torch
    from convrnn_video.convrnn.extrapolate import extrapolate_masks
    from convrnn_video.convrnn.motion import accumulate, carry_mask
    from convrnn_video.runtime.checkpoint import load_model
    from convrnn_video.runtime.jaccard import FrameJaccard
    from convrnn_video.shards.loader import make_loader

    device = torch.device("cpu")
    models = {name: _mask_model(path, device) for name, path in ckpts.items()}
    frames_models = {f"carry:{name}": load_model(path, device, task="frames")[0]
                     for name, path in (carriers or {}).items()}  # fmt: skip
    names = (*models, *frames_models, "copy_frame11", "extrapolate_frame11")
    acc = {name: FrameJaccard() for name in names}
    shift = {name: [] for name in models}  # mean |accumulated displacement| at frame 22
    captured: dict[str, list] = {name: [] for name in models}

    def keep(name):
        def hook(module, inputs, output):  # autoregressive: one call per predicted frame
            captured[name].append(output.detach())

        return hook

    for name, model in models.items():
        if getattr(model, "flow_head", None) is not None:
            model.flow_head.register_forward_hook(keep(name))
    loader = make_loader(shards, "val", mode="eval", batch_size=4, masks=True, frames_in=11,
                         frames_out=11)  # fmt: skip
    with torch.inference_mode():
        for batch in loader:
            masks = batch["masks"].long()  # (B, 22, H, W)
            seen, true = masks[:, :11], masks[:, 11:]
            acc["copy_frame11"].update(seen[:, -1:].expand_as(true), true)
            acc["extrapolate_frame11"].update(extrapolate_masks(seen, true.shape[1]).long(), true)
            for name, model in frames_models.items():
                _, motion = model(batch["inputs"], return_motion=True)
                acc[name].update(carry_mask(seen[:, -1], motion), true)
            for name, model in models.items():
                captured[name].clear()
                pred = model(seen).argmax(2)  # (B, 11, H, W)
                acc[name].update(pred, true)
                total = None
                for step in captured[name]:
                    total = accumulate(step, total)
                if total is not None:  # (B, 2, h, w) in grid cells
                    shift[name].append(float(total.norm(dim=1).mean()) * model.cfg.patch)
    out = {}
    for name, a in acc.items():
        result = a.compute()
        out[name] = {"jaccard_frame22": round(result["last"], 4),
                     "jaccard_frames12_22": round(result["mean"], 4)}  # fmt: skip
        if shift.get(name):
            out[name]["last_step_mean_displacement_px"] = round(statistics.mean(shift[name]), 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--train", type=int, default=300)
    ap.add_argument("--val", type=int, default=50)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--presets", default="compact-masks,compact-masks-motion")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup-steps", type=int, default=20)
    ap.add_argument("--ss-steps", type=int, default=0, help="teacher prob 1 -> 0 over these")
    ap.add_argument("--crop", type=int, nargs=2, default=(96, 144), metavar=("H", "W"))
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--flow-weight", type=float, default=0.1, help="train --flow-weight")
    ap.add_argument(
        "--also",
        nargs="*",
        default=[],
        metavar="NAME=CKPT",
        help="also score these trained checkpoints (e.g. an earlier run's)",
    )
    ap.add_argument(
        "--carry",
        nargs="*",
        default=[],
        metavar="NAME=CKPT",
        help="frames models with a motion output: score frame 11's mask moved by their motion",
    )
    ap.add_argument("--parallel", action="store_true", help="one process per preset, 1 thread")
    ap.add_argument("--only-train", help=argparse.SUPPRESS)  # a --parallel child
    args = ap.parse_args()

    shards = prepare_shards(args.cache, args.train, args.val, args.seed, 2)
    if args.only_train:
        print(json.dumps(train_one(args, shards, args.only_train)))
        return
    presets = [p for p in args.presets.split(",") if p]  # none: score --also, --carry only
    if args.parallel:
        argv = [a for a in sys.argv[1:] if a != "--parallel"]
        procs = {p: subprocess.Popen([sys.executable, __file__, *argv, "--only-train", p,
                                      "--threads", "1"], stdout=subprocess.PIPE, text=True)
                 for p in presets}  # fmt: skip
        runs = {run_name(p, args): json.loads(proc.communicate()[0].strip().splitlines()[-1])
                for p, proc in procs.items()}  # fmt: skip
    else:
        runs = {run_name(p, args): train_one(args, shards, p) for p in presets}
    ckpts = {name: r["ckpt"] for name, r in runs.items()}
    ckpts.update(dict(item.split("=", 1) for item in args.also))
    scores = score(ckpts, shards, dict(item.split("=", 1) for item in args.carry))
    report = {
        "benchmark": "motion",
        "machine": machine(),
        "data": {"train": args.train, "val": args.val, "scored_on": "true masks of frames 1-11"},
        "recipe": {
            "steps": args.steps,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "warmup_steps": args.warmup_steps,
            "ss_steps": args.ss_steps,
            "crop": list(args.crop),
            "parallel": args.parallel,
        },  # fmt: skip
        "runs": runs,
        "scores": scores,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
