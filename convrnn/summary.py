"""Parameter and FLOP accounting of a config, and the table behind `python cli.py presets`.

FLOPs are 2 x the multiply-accumulates of the convolutions, counted analytically for one
video at the config's nominal frame size. Two counts:
- `original`: every convolution the naive reference (the original code) performs, including
  those over zero inputs (the top forecaster's) and zero initial states;
- `executed`: what `EncoderForecaster` performs after skipping those.
GroupNorm, activations and gate arithmetic are not counted (a few percent at most).
Masks: the class embedding of the inputs is a lookup (no MACs); the head has one output per
class; a prediction fed back is softmax(logits) @ embedding table, a 1x1 convolution from
num_classes to embed_channels, counted with the convolutions.
"""

from __future__ import annotations

from typing import Any

from .config import ModelConfig
from .presets import PRESETS

# What each family of presets is for (the name before "-masks", "-lstm").
USE = {"tiny": "tests", "compact": "2-core CPU", "seed": "GPU", "tracks": "any"}


def preset_use(name: str) -> str:
    """ "tests", "2-core CPU" or "GPU" for a preset name ("" for one added at run time)."""
    return USE.get(name.split("-")[0], "")


def cell_macs(cfg: ModelConfig, i: int, cin: int, pixels: int, x: bool, h: bool) -> int:
    """Gate-convolution MACs of one step of a stage-i cell; x / h: is the input / state part
    convolved."""
    f, k2 = cfg.hidden[i], cfg.rnn_kernels[i] ** 2
    out = (3 if cfg.cell == "gru" else 4) * f  # GRU: z, r, candidate; LSTM: i, f, g, o
    return pixels * k2 * out * ((cin if x else 0) + (f if h else 0))


def conv_macs(
    cfg: ModelConfig, executed: bool = False, height: int | None = None, width: int | None = None
) -> int:
    """Convolution MACs of one video (frames_in -> frames_out), `feedback_macs` included."""
    n, t_in, t_out = cfg.stages, cfg.frames_in, cfg.frames_out
    grids = cfg.grids(height, width)
    pix = [h * w for h, w in grids]
    enc_in = (cfg.in_channels * cfg.patch**2,) + cfg.hidden[:-1]
    dec_in = cfg.up_channels + (cfg.hidden[-1],)
    # The encoder runs once per observed frame, and again per fed-back frame when autoregressive.
    enc_steps = t_in + (t_out - 1 if cfg.autoregressive else 0)
    total = 0
    for i in range(n):
        stage = pix[i] * enc_in[i] * cfg.stage_channels[i] * cfg.stage_kernels[i] ** 2
        step = cell_macs(cfg, i, cfg.stage_channels[i], pix[i], True, True)
        first = cell_macs(cfg, i, cfg.stage_channels[i], pix[i], True, not executed)
        total += enc_steps * stage + (enc_steps - 1) * step + first
    for i in range(n):
        zero_input = i == n - 1 and not cfg.autoregressive
        total += t_out * cell_macs(cfg, i, dec_in[i], pix[i], not (zero_input and executed), True)
    for i in range(n - 1):  # transposed convs: MACs = input pixels x cin x cout x k^2
        k = cfg.up_kernel if cfg.strides[i + 1] > 1 else 3
        total += t_out * pix[i + 1] * cfg.hidden[i + 1] * cfg.up_channels[i] * k * k
    cin = cfg.hidden[0]
    for ch in cfg.head_channels:
        total += t_out * pix[0] * cin * ch * 9
        cin = ch
    total += t_out * pix[0] * cin * cfg.out_channels * cfg.patch**2
    full = (height or cfg.height) * (width or cfg.width)  # refinement: full-resolution 3x3s
    cin = 2 * cfg.image_channels
    for ch in (*cfg.refine, cfg.image_channels) if cfg.refine else ():
        total += t_out * full * cin * ch * 9
        cin = ch
    return total + feedback_macs(cfg, height, width)


def feedback_macs(cfg: ModelConfig, height: int | None = None, width: int | None = None) -> int:
    """MACs of embedding a mask model's fed-back predictions (softmax @ table) in one video."""
    if not (cfg.masks and cfg.autoregressive):
        return 0
    pixels = (height or cfg.height) * (width or cfg.width)
    return (cfg.frames_out - 1) * pixels * cfg.num_classes * cfg.embed_channels


def param_count(cfg: ModelConfig) -> int:
    """Number of parameters (builds the model on the CPU)."""
    from .forecaster import build_model

    return sum(p.numel() for p in build_model(cfg).parameters())


def describe(name: str, cfg: ModelConfig) -> dict[str, Any]:
    """One row of the presets table (the track forecaster: an MLP over objects, no grids and
    a negligible count of FLOPs)."""
    if cfg.forecast == "tracks":
        return {"name": name, "for": preset_use(name), "cell": "MLP",
                "forecast": f"masks ({cfg.num_classes} classes): object tracks",
                "frames": f"{cfg.frames_in}->{cfg.frames_out}", "frame": "any", "patch": None,
                "grid": "objects", "recurrent_grids": [], "hidden": [cfg.track_hidden] * 2,
                "output": cfg.output, "autoregressive": False, "params": param_count(cfg),
                "gflops": 0.0, "gflops_executed": 0.0}  # fmt: skip
    grids = cfg.grids()
    return {
        "name": name,
        "for": preset_use(name),
        "cell": {"gru": "ConvGRU", "lstm": "ConvLSTM"}[cfg.cell],
        # frames: RGB -> RGB; masks: class ids -> logits, through an embedding of E channels
        "forecast": f"masks ({cfg.num_classes} classes, E={cfg.embed_channels})"
        if cfg.masks
        else "frames",
        "frames": f"{cfg.frames_in}->{cfg.frames_out}",
        "frame": f"{cfg.height}x{cfg.width}",
        "patch": cfg.patch,
        "grid": f"{grids[0][0]}x{grids[0][1]}x{cfg.in_channels * cfg.patch**2}",
        "recurrent_grids": [f"{h}x{w}" for h, w in grids],
        "hidden": list(cfg.hidden),
        "output": cfg.output,
        "autoregressive": cfg.autoregressive,
        "params": param_count(cfg),
        # gflops: what the original code would perform; gflops_executed: what this code does.
        "gflops": round(2 * conv_macs(cfg) / 1e9, 2),
        "gflops_executed": round(2 * conv_macs(cfg, executed=True) / 1e9, 2),
    }


def preset_table(**overrides: Any) -> list[dict[str, Any]]:
    """Every preset described (overrides, e.g. frames_out=5, apply to all)."""
    return [
        describe(name, cfg.__class__(**{**cfg.to_dict(), **overrides}))
        for name, cfg in PRESETS.items()
    ]


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as aligned text."""
    cols = [
        ("name", "preset"),
        ("for", "for"),
        ("cell", "cell"),
        ("forecast", "forecast"),
        ("frames", "frames"),
        ("grid", "grid (patched)"),
        ("recurrent_grids", "recurrent grids"),
        ("hidden", "hidden"),
        ("output", "output"),
        ("autoregressive", "feedback"),
        ("params", "params"),
        ("gflops", "GFLOP/video"),
        ("gflops_executed", "executed"),
    ]

    def cell(row: dict[str, Any], key: str) -> str:
        v = row[key]
        if key == "params":
            return f"{v:,}"
        if key == "autoregressive":
            return "own prediction" if v else "zeros"
        if isinstance(v, list):
            return ",".join(str(x) for x in v)
        if isinstance(v, float):
            return f"{v:,.1f}"
        return str(v)

    table = [[title for _, title in cols]] + [[cell(r, k) for k, _ in cols] for r in rows]
    widths = [max(len(line[j]) for line in table) for j in range(len(cols))]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in table
    ]
    note = (
        "GFLOP/video = 2 x the convolution multiply-accumulates of one video at the frame "
        "size shown, as the original code performs them (zero inputs and zero states "
        "included); 'executed' is what this implementation performs after skipping those. "
        "Mask models: the class embedding is a lookup; a fed-back prediction's softmax @ "
        "table counts as a 1x1 convolution."
    )
    return "\n".join(lines) + "\n\n" + note
