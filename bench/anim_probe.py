"""Can one network keep a character's identity across its frames? A probe for issue 32, not a product path.

    python bench/anim_probe.py --set DIR --layout frames --minutes 10 --threads 2 [--name crossfire]

Each character's D x F frames are stacked as the channels of one sample (D * F * 4 channels, order
direction, frame, RGBA), so every frame is drawn by one network pass over the same spatial grid: the
frames share all features and anchors by construction. The network is `sm train`'s default preset
(SpriteUNet n-feat 32, v-prediction, cosine schedule, min-SNR, label dropout 0.1, EMA) with that many
input and output channels, trained from scratch (or from a sprite model, --init) with sm's diffusion loss (training.loop) for a wall-clock
budget on the characters of a stratified 80% split; horizontal flips mirror every frame and swap the
left and right directions. Sampling: DDIM 25 steps at guidance 2, alpha made crisp at 128.

Scored with eval.anim_consistency beside the real train and held-out characters: colour and silhouette
overlap of neighbouring frames, colour overlap of a character's directions, each with the same figure
across characters; copies = generated characters whose mean absolute RGBA difference to the nearest
training character (all frames) is at most 2. Writes bench/results/anim-probe-NAME.md/.json and -4x.png
(real held-out characters, then generated ones: per character a row per direction, frames left to right).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"


def stack(frames: np.ndarray) -> np.ndarray:
    """N x D x F x H x W x 4 uint8 -> N x (D*F*4) x H x W float32 in [-1, 1]."""
    n, d, f, h, w, c = frames.shape
    return frames.transpose(0, 1, 2, 5, 3, 4).reshape(n, d * f * c, h, w).astype(np.float32) / 127.5 - 1.0


def unstack(x: np.ndarray, d: int, f: int) -> np.ndarray:
    n, _, h, w = x.shape
    px = np.clip(np.rint((x + 1.0) * 127.5), 0, 255).astype(np.uint8)
    out = px.reshape(n, d, f, 4, h, w).transpose(0, 1, 2, 4, 5, 3).copy()
    out[..., 3] = np.where(out[..., 3] >= 128, 255, 0)
    out[out[..., 3] == 0] = 0
    return out


def split(labels: np.ndarray, share: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    held = []
    for k in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == k))
        held.extend(idx[: max(1, int(round(share * len(idx))))].tolist())
    mask = np.zeros(len(labels), bool)
    mask[held] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def mirror_order(directions: tuple[str, ...], d: int, f: int) -> list[int]:
    """Channel order of a mirrored sample: left and right directions swap (others stay)."""
    swap = {i: i for i in range(d)}
    if "left" in directions and "right" in directions:
        lt, rt = directions.index("left"), directions.index("right")
        swap[lt], swap[rt] = rt, lt
    return [(swap[i] * f + j) * 4 + c for i in range(d) for j in range(f) for c in range(4)]


def from_prior(net, prior: str) -> None:
    """Load a 4-channel sprite model's weights into the stacked network: every layer as it is, the input
    conv's weights repeated per frame and divided by the frame count (a still character's stack reads as
    one sprite), the output conv repeated per frame; the label rows stay fresh (other labels)."""
    import torch

    from scarlet_moon.backends import read_card
    from scarlet_moon.models.checkpoint import load_checkpoint

    weights = {k: v.float() for k, v in load_checkpoint(read_card(prior).path, with_optim=False).weights.items()}
    own = net.state_dict()
    reps = own["inp.weight"].shape[1] // weights["inp.weight"].shape[1]
    weights["inp.weight"] = weights["inp.weight"].repeat(1, reps, 1, 1) / reps
    for k in ("out.2.weight", "out.2.bias"):
        weights[k] = weights[k].repeat(reps, *([1] * (weights[k].ndim - 1)))
    weights["label_emb.weight"] = own["label_emb.weight"]
    with torch.no_grad():
        net.load_state_dict(weights)


def train(
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    mirror: list[int],
    minutes: float,
    lr: float,
    batch: int,
    prior: str | None = None,
):
    import torch

    from scarlet_moon.training.config import DEFAULT
    from scarlet_moon.training.loop import cosine_lr, diffusion_loss, update_ema
    from scarlet_moon.training.state import build_network, schedule_of

    cfg = DEFAULT
    torch.manual_seed(0)
    net = build_network(cfg, channels=x.shape[1], size=(x.shape[2], x.shape[3]), num_classes=num_classes)
    if prior:
        from_prior(net, prior)
    ema = build_network(cfg, channels=x.shape[1], size=(x.shape[2], x.shape[3]), num_classes=num_classes)
    ema.load_state_dict(net.state_dict())
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    abar = torch.from_numpy(schedule_of(cfg).alphas_cumprod()).float()
    xs, ys, order = torch.from_numpy(x), torch.from_numpy(y), torch.tensor(mirror)
    g = torch.Generator().manual_seed(0)
    t0, step, losses = time.perf_counter(), 0, []
    budget = minutes * 60
    while (spent := (time.perf_counter() - t0) / budget) < 1:
        idx = torch.randint(len(xs), (batch,), generator=g)
        x0, yb = xs[idx], ys[idx].clone()
        flip = torch.rand(batch, generator=g) < 0.5
        x0 = torch.where(flip.view(-1, 1, 1, 1), x0[:, order].flip(-1), x0)
        yb[torch.rand(batch, generator=g) < cfg.cond_drop] = num_classes
        noise = torch.randn(x0.shape, generator=g)
        t = torch.randint(0, cfg.timesteps, (batch,), generator=g)
        for group in opt.param_groups:
            group["lr"] = min(1.0, spent / 0.05) * cosine_lr(lr, int(1e6 * spent), 1_000_000)
        loss = diffusion_loss(net, x0, yb, t, noise, abar, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        update_ema(ema, net, cfg.ema_decay, step)
        losses.append(loss.item())
        step += 1
    return ema.eval(), step, losses


def sample(net, labels: np.ndarray, num_classes: int, shape: tuple[int, ...], seed: int, guidance: float = 2.0):
    """sm's DDIM (eta 0, 25 trailing steps, x0 clipped) with classifier-free guidance on v, through the
    product's sampler and denoiser (both are channel-agnostic arithmetic)."""
    import torch

    from scarlet_moon.diffusion.guidance import make_denoiser
    from scarlet_moon.diffusion.samplers import run_sampler
    from scarlet_moon.training.config import DEFAULT
    from scarlet_moon.training.state import schedule_of

    y = torch.from_numpy(labels)
    both = torch.cat([y, torch.full_like(y, num_classes)])
    schedule = schedule_of(DEFAULT)

    def run(x: torch.Tensor, t: int) -> torch.Tensor:
        return net(x, torch.full((len(x),), float(t)), both)

    den = make_denoiser(
        run,
        len(y),
        guidance,
        schedule.alphas_cumprod(),
        DEFAULT.prediction,
        concat=lambda p, q: torch.cat([p, q]),
        finite=lambda p: bool(torch.isfinite(p).all()),
    )
    x = torch.randn((len(labels), *shape), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return run_sampler("ddim", den, x, schedule, 25, clip_x0=True).numpy()


def picture(rows: list[tuple[str, np.ndarray]], path: Path, per_row: int = 8, zoom: int = 4) -> None:
    """Per source a block: per_row characters side by side, a row per direction, frames left to right."""
    from PIL import Image, ImageDraw

    _, d, f, h, w, _ = rows[0][1].shape
    cw, ch = (w + 2) * zoom, (h + 2) * zoom
    margin = 110
    sheet = Image.new("RGBA", (margin + per_row * f * cw + per_row * 6, len(rows) * (d * ch + 10)), (96, 96, 96, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (name, chars) in enumerate(rows):
        top = r * (d * ch + 10)
        draw.text((6, top + d * ch // 2 - 6), name, fill=(255, 255, 255, 255))
        for c in range(min(per_row, len(chars))):
            for i in range(d):
                for j in range(f):
                    tile = Image.fromarray(chars[c, i, j], "RGBA").resize((w * zoom, h * zoom), Image.NEAREST)
                    sheet.alpha_composite(tile, (margin + (c * f + j) * cw + c * 6 + zoom, top + i * ch + zoom))
    sheet.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", required=True)
    ap.add_argument("--layout", default="frames")
    ap.add_argument("--name", default="crossfire")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--init", default=None, help="start from this 4-channel model of the frame size (e.g. bundled-32)")
    args = ap.parse_args()
    import torch

    from scarlet_moon.data.anim import load_anim
    from scarlet_moon.eval.anim_consistency import consistency

    torch.set_num_threads(args.threads)
    a = load_anim(args.set, args.layout)
    n, d, f, h, w = a.shape
    tr, held = split(a.labels)
    net, steps, losses = train(
        stack(a.frames[tr]),
        a.labels[tr],
        len(a.label_names),
        mirror_order(a.directions, d, f),
        args.minutes,
        args.lr,
        args.batch,
        args.init,
    )
    labels = np.sort(a.labels[held])
    gens = [
        unstack(sample(net, labels, len(a.label_names), (d * f * 4, h, w), s), d, f)
        for s in map(int, args.seeds.split(","))
    ]
    train_frames = a.frames[tr].reshape(len(tr), -1).astype(np.int16)

    def copies(chars: np.ndarray) -> float:
        flat = chars.reshape(len(chars), -1).astype(np.int16)
        nearest = np.array([np.abs(train_frames - c).mean(axis=1).min() for c in flat])
        return float((nearest <= 2).mean())

    figures = {
        "real train": consistency(a.frames[tr]),
        "real held-out": consistency(a.frames[held]),
        **{
            f"generated, seed {s}": {**consistency(g), "copies": copies(g)} for s, g in zip(args.seeds.split(","), gens)
        },
    }
    keys = ("palette_frames", "silhouette_frames", "palette_directions", "size_directions")
    lines = [
        f"# Animation probe: {args.name}",
        "",
        f"{a.source}: {n} characters x {d} directions x {f} frames of {w}x{h}, {len(tr)} trained on, {len(held)} held out "
        f"(stratified by label). Frames stacked as {d * f * 4} channels; default-preset SpriteUNet "
        f"{'from ' + args.init + ' (input/output layers repeated per frame)' if args.init else 'from scratch'}, "
        f"{args.minutes:g} CPU-minutes with {args.threads} threads: {steps} steps of batch {args.batch}, lr {args.lr:g}; "
        f"loss {np.mean(losses[:50]):.3f} over the first 50 steps, {np.mean(losses[-50:]):.3f} over the last 50. "
        f"Generated: the held-out split's count per label, DDIM 25 steps, guidance 2 (`bench/anim_probe.py`).",
        "",
        "| characters | " + " | ".join(f"{k} (across)" for k in keys) + " | copies |",
        "|---|" + "---:|" * (len(keys) + 1),
    ]
    for name, fig in figures.items():
        cells = [f"{fig[k]:.3f} ({fig.get(k + '_between', math.nan):.3f})" for k in keys]
        copied = f"{100 * fig['copies']:.1f}%" if "copies" in fig else "-"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {copied} |")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"anim-probe-{args.name}"
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(
        json.dumps({"figures": figures, "steps": steps, "args": vars(args)}, indent=1) + "\n"
    )
    picture(
        [
            ("real held-out", a.frames[held][np.argsort(a.labels[held], kind="stable")]),
            *[(f"seed {s}", g) for s, g in zip(args.seeds.split(","), gens)],
        ],
        Path(str(out) + "-4x.png"),
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
