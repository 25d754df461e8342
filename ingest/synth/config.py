"""The generator's config, the real dataset's split layout, and its one error type."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from convrnn_video.ingest.errors import IngestError

# Split name -> (first video id, frames written per video, has mask.npy), as in the real data.
SPLITS: dict[str, tuple[int, int, bool]] = {
    "train": (0, 22, True),
    "val": (1000, 22, True),
    "unlabeled": (2000, 22, False),
    "hidden": (15000, 11, False),
}
FULL_COUNTS = {"train": 1000, "val": 1000, "unlabeled": 13000, "hidden": 2000}
SPLIT_CAPACITY = {"train": 1000, "val": 1000, "unlabeled": 13000}  # ids before the next split
FRAMES = 22  # frames simulated per video (hidden writes the first 11)
HEIGHT, WIDTH = 160, 240
GENERATOR_VERSION = 3  # bump when the pictures change, so a resume never mixes two versions


class SynthError(IngestError):
    """A user mistake in synth: bad counts, or an output folder that is not ours to fill."""


@dataclass
class SynthConfig:
    """What `generate` writes. The counts' defaults make a small quick-start set."""

    out: Path = field(default_factory=lambda: Path("data"))  # DATA_ROOT to create
    train: int = 8  # videos in train/ (ids from 0), 22 frames + mask.npy
    val: int = 4  # videos in val/ (ids from 1000), 22 frames + mask.npy
    unlabeled: int = 8  # videos in unlabeled/ (ids from 2000), 22 frames
    hidden: int = 4  # videos in hidden/ (ids from 15000), frames 0-10 only
    seed: int = 0  # every video's RNG comes from (seed, video id) alone
    workers: int = 1  # processes; the output does not depend on it
    overwrite: bool = False  # replace the splits of a non-empty `out`
    progress: bool = True  # tqdm bar with videos/s
    png_compress: int = 1  # zlib level of the PNGs (0-9): 1 is fast and near the real sizes

    def __post_init__(self) -> None:
        self.out = Path(self.out)

    def counts(self) -> dict[str, int]:
        """Videos per split, in the real split order."""
        return {split: getattr(self, split) for split in SPLITS}

    def validate(self) -> None:
        """Report every problem at once as one SynthError."""
        problems = []
        for split, n in self.counts().items():
            if not isinstance(n, int) or n < 0:
                problems.append(f"--{split} must be a count >= 0, got {n!r}")
            elif split in SPLIT_CAPACITY and n > SPLIT_CAPACITY[split]:
                problems.append(
                    f"--{split} {n} is more than the {SPLIT_CAPACITY[split]} ids the real "
                    f"layout leaves for {split}"
                )
        if sum(n for n in self.counts().values() if isinstance(n, int) and n > 0) == 0:
            problems.append("nothing to generate: all counts are 0")
        if not isinstance(self.workers, int) or self.workers < 1:
            problems.append(f"--workers must be >= 1, got {self.workers!r}")
        if not 0 <= self.png_compress <= 9:
            problems.append(f"png_compress must be 0-9, got {self.png_compress!r}")
        if problems:
            raise SynthError("; ".join(problems))

    def identity(self) -> dict:
        """The parameters that decide the files: a rerun with the same identity may resume."""
        keep = ("train", "val", "unlabeled", "hidden", "seed", "png_compress")
        d = {k: v for k, v in asdict(self).items() if k in keep}
        d["generator_version"] = GENERATOR_VERSION
        return d

    def jobs(self) -> list[tuple[str, int]]:
        """Every (split, video id) to write, in id order."""
        return [
            (split, SPLITS[split][0] + i) for split, n in self.counts().items() for i in range(n)
        ]
