"""Shared fixtures: a small generated dataset, its shards, and the real samples."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from infer_helpers import tiny_checkpoint
from ingest_helpers import SAMPLE_VIDEOS, copy_tree, link_video

REAL_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "real-samples"


@pytest.fixture(scope="session")
def real_samples() -> Path:
    """The nine real videos beside the repository; tests using them skip when absent."""
    if not REAL_SAMPLES.is_dir():
        pytest.skip(f"real samples not found at {REAL_SAMPLES}")
    return REAL_SAMPLES


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated dataset in the real layout (shared, read-only for tests)."""
    from convrnn_video.ingest.synth import SynthConfig, generate

    root = tmp_path_factory.mktemp("synth") / "data"
    generate(SynthConfig(out=root, train=6, val=4, unlabeled=6, hidden=4, seed=0, progress=False))
    return root


@pytest.fixture(scope="session")
def shard_root(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`synth_root` ingested into shards (shared, read-only for tests)."""
    from convrnn_video.ingest.pack import IngestConfig, run_ingest

    out = tmp_path_factory.mktemp("shards") / "shards"
    run_ingest(IngestConfig(data_root=synth_root, out=out, workers=1, progress=False))
    return out


def shards_url(shard_root: Path, scheme: str, name: str) -> str:
    """`shard_root` as a `file://` URL, or copied into fsspec's memory file system."""
    if scheme == "file":
        return f"file://{shard_root}"
    import fsspec

    fs = fsspec.filesystem("memory")
    for f in shard_root.iterdir():
        if f.is_file():
            fs.pipe(f"/{name}/{f.name}", f.read_bytes())
    return f"memory://{name}"


@pytest.fixture(scope="session")
def tiny_stores(shard_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Val and hidden prediction stores of an untrained `tiny` checkpoint (read-only for tests)."""
    from convrnn_video.infer.config import PredictConfig
    from convrnn_video.infer.predict import run_predict
    from infer_helpers import tiny_checkpoint

    tmp = tmp_path_factory.mktemp("stores")
    ckpt = tiny_checkpoint(tmp / "best.pt")
    stores = {}
    for split in ("val", "hidden"):
        stores[split] = tmp / f"{split}.zarr"
        run_predict(
            PredictConfig(
                shards=str(shard_root),
                ckpt=str(ckpt),
                out=str(stores[split]),
                split=split,
                progress=False,
            )
        )
    return stores


@pytest.fixture(scope="session")
def mask_stores(shard_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Val and hidden stores with masks: an untrained `tiny` frame model and an untrained
    `tiny` segmenter; "ckpt" and "segmenter" are their checkpoints (read-only for tests)."""
    from convrnn_video.infer.config import PredictConfig
    from convrnn_video.infer.predict import run_predict
    from infer_helpers import tiny_checkpoint, tiny_segmenter

    tmp = tmp_path_factory.mktemp("mask-stores")
    paths = {"ckpt": tiny_checkpoint(tmp / "best.pt"), "segmenter": tiny_segmenter(tmp / "seg.pt")}
    for split in ("val", "hidden"):
        paths[split] = tmp / f"{split}.zarr"
        run_predict(
            PredictConfig(
                shards=str(shard_root),
                ckpt=str(paths["ckpt"]),
                segmenter=str(paths["segmenter"]),
                out=str(paths[split]),
                split=split,
                progress=False,
            )
        )
    return paths


def square_frames(frames: int, height: int, width: int, mode: str, seed: int) -> list:
    """`frames` uint8 frames of a bright square moving over a gradient: (H, W, 3) for RGB,
    (H, W) for L; `seed` picks the start and the step."""
    import numpy as np

    rng = np.random.default_rng(seed)
    side = max(2, min(height, width) // 6)
    y, x = rng.integers(0, [height - side, width - side])
    dy, dx = rng.integers(-3, 4, size=2)
    ramp = np.linspace(20, 90, width, dtype=np.float32)[None, :] + np.zeros((height, 1))
    out = []
    for t in range(frames):
        frame = ramp.copy()
        top, left = (y + dy * t) % (height - side), (x + dx * t) % (width - side)
        frame[top : top + side, left : left + side] = 200 + (seed * 7 + t) % 50
        frame = frame.astype(np.uint8)
        out.append(np.stack([frame, frame[::-1], 255 - frame], -1) if mode == "RGB" else frame)
    return out


def write_square_video(
    folder: Path, frames: int, height: int, width: int, mode: str, seed: int, mask: bool = False
) -> Path:
    """A video folder of moving-square PNGs (image_0.png ...), plus mask.npy when `mask`."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    pictures = square_frames(frames, height, width, mode, seed)
    for t, frame in enumerate(pictures):
        Image.fromarray(frame).save(folder / f"image_{t}.png")
    if mask:  # class 5 where the square is bright
        gray = np.stack([p if p.ndim == 2 else p[..., 0] for p in pictures])
        np.save(folder / "mask.npy", np.where(gray >= 200, 5, 0).astype(np.uint8))
    return folder


def rewrite_tar(tar_path: Path, change) -> None:
    """Rewrite a tar in place with its (name, bytes) members passed through `change`."""
    import io
    import tarfile

    with tarfile.open(tar_path) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(tar_path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in change(members):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def counted_macs(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of every convolution a forward pass runs, counted by hooks."""
    total = 0

    def hook(mod: torch.nn.Module, args: tuple, out: torch.Tensor) -> None:
        nonlocal total
        kk = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels * mod.out_channels
        # A conv's MACs follow its output pixels; a transposed conv's its input pixels.
        pixels = args[0] if isinstance(mod, torch.nn.ConvTranspose2d) else out
        total += pixels.numel() // pixels.shape[1] * kk

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)
    ]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


@pytest.fixture(scope="module")
def synth_samples(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Nine generated videos shaped like the real samples (three each of train, val,
    unlabeled), with the litter of a real download: a README and a .DS_Store."""
    data = tmp_path_factory.mktemp("samples") / "data"
    for split, videos in SAMPLE_VIDEOS.items():
        for video in videos:
            copy_tree(synth_root / split / video, data / split / video)
    (data / "README.md").write_text("# nine sample videos\n")
    (data / "train" / ".DS_Store").write_bytes(bytes(range(256)) * 24)
    return data


@pytest.fixture(scope="module", params=["synth", "real"])
def samples(request: pytest.FixtureRequest) -> Path:
    """The generated samples, then the real ones (skipped when they are absent)."""
    return request.getfixturevalue("synth_samples" if request.param == "synth" else "real_samples")


@pytest.fixture(scope="module")
def dataset(samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The samples plus more litter and a video_10 (to check numeric order)."""
    data = copy_tree(samples, tmp_path_factory.mktemp("data") / "data")
    (data / "__MACOSX" / "train").mkdir(parents=True)
    (data / "__MACOSX" / "train" / "._video_0").write_bytes(b"junk")
    (data / "train" / "video_0" / ".DS_Store").write_bytes(b"junk")
    (data / "train" / "video_0" / "image_3 copy.png").write_bytes(b"junk")
    (data / "val" / "notes.txt").write_text("stray")
    link_video(data / "train" / "video_1", data / "train" / "video_10")
    return data


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained `tiny` frames checkpoint (the predict tests')."""
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "best.pt")
