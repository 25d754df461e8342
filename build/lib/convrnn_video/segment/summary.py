"""Parameter and FLOP accounting of a segmenter config, and its table in `python cli.py presets`.

FLOPs are 2 x the multiply-accumulates of the convolutions (3x3, 2x2 transposed, 1x1 head) of
one frame, counted analytically; norms, pooling, activations and the factored head's combination
are not counted (well under 1%). tests/test_segment.py checks the count against the
convolutions a forward pass runs.
"""

from __future__ import annotations

from typing import Any

from .config import PRESETS, SegConfig

USE = {"tiny": "tests", "small": "2-core CPU", "unet": "GPU"}  # what each preset is for


def conv_macs(cfg: SegConfig, height: int | None = None, width: int | None = None) -> int:
    """Convolution multiply-accumulates of one frame (default: the config's nominal size)."""
    h, w = height or cfg.height, width or cfg.width
    ch = cfg.channels
    pix = [(h >> i) * (w >> i) for i in range(cfg.levels)]
    total = 0
    for i in range(cfg.levels):  # encoder: two 3x3 convs per level
        cin = cfg.in_channels if i == 0 else ch[i - 1]
        total += pix[i] * 9 * (cin * ch[i] + ch[i] * ch[i])
    for i in range(cfg.levels - 1):
        total += pix[i + 1] * 4 * ch[i + 1] * ch[i]  # 2x2 transposed conv: per input pixel
        total += pix[i] * 9 * (2 * ch[i] * ch[i] + ch[i] * ch[i])  # decoder's two 3x3 convs
    total += pix[0] * ch[0] * cfg.head_channels  # 1x1 head
    return total


def gflop_per_frame(cfg: SegConfig, height: int | None = None, width: int | None = None) -> float:
    """GFLOP (2 x multiply-accumulates) of one forward pass over one frame."""
    return 2 * conv_macs(cfg, height, width) / 1e9


def param_count(cfg: SegConfig) -> int:
    """Number of parameters (builds the model on the CPU)."""
    from .unet import build_segmenter

    return sum(p.numel() for p in build_segmenter(cfg).parameters())


def describe(name: str, cfg: SegConfig) -> dict[str, Any]:
    """One row of the segmenter presets table."""
    return {
        "name": name,
        "for": USE.get(name, ""),
        "frame": f"{cfg.height}x{cfg.width}",
        "channels": list(cfg.channels),
        "norm": cfg.norm,
        "head": cfg.head,
        "stride": cfg.stride,
        "params": param_count(cfg),
        "gflops": round(gflop_per_frame(cfg), 3),
    }


def preset_table(**overrides: Any) -> list[dict[str, Any]]:
    """Every segmenter preset described (overrides, e.g. height=128, apply to all)."""
    return [
        describe(name, SegConfig(**{**cfg.to_dict(), **overrides})) for name, cfg in PRESETS.items()
    ]


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as aligned text."""
    cols = [
        ("name", "segmenter"),
        ("for", "for"),
        ("channels", "channels"),
        ("norm", "norm"),
        ("head", "head"),
        ("stride", "stride"),
        ("params", "params"),
        ("gflops", "GFLOP/frame"),
    ]

    def cell(row: dict[str, Any], key: str) -> str:
        v = row[key]
        if key == "params":
            return f"{v:,}"
        if isinstance(v, list):
            return ",".join(str(x) for x in v)
        if isinstance(v, float):
            return f"{v:,.2f}"
        return str(v)

    table = [[title for _, title in cols]] + [[cell(r, k) for k, _ in cols] for r in rows]
    widths = [max(len(line[j]) for line in table) for j in range(len(cols))]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in table
    ]
    frame = rows[0]["frame"] if rows else "160x240"
    note = (
        f"GFLOP/frame = 2 x the convolution multiply-accumulates of one forward pass over one "
        f"{frame} frame; frame height and width must be multiples of the stride."
    )
    return "\n".join(lines) + "\n\n" + note
