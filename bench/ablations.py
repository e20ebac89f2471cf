"""Ablations of the default preset: one change at a time, equal training steps, `sm eval`'s figures.

    PYTHONPATH=. python bench/ablations.py --steps 2000 --count 600 --device cuda \
        --classifier-cache sm-runs/classifier-cache --out bench/results/ablations.json

Every variant is a TrainConfig override on a preset (`default` unless said otherwise), trained
on the bundled set with the same seed and data (tracking off: trackers={}, mlflow is never
imported), then evaluated with its own sampler settings (the config's sampler, sample_steps and
guidance; the default preset's are DPM-Solver++ 2M, 25 steps, guidance 2) on --count sprites.
Variants that differ only in sampling settings share one trained model (trained once).

Figures per variant: Frechet distance, conditional accuracy, copies, colours per sprite, alpha
crispness, training seconds; the Markdown table gives each figure's change versus `default`.
Two noise rows (`default-seed1`: another training seed; `default-evalseed1`: the same weights,
another sampling seed) say how large a change has to be before it means something.

Time bounds: --time-budget SECONDS skips the variants that would start after it (results so
far are written after every variant, so a killed run still leaves them); finished trainings
under --runs are reused when the same command is run again (same config and steps), so a long
list can be run in several calls, or as subsets with --variants a,b,c.

The eval classifier is cached per data set under $SCARLET_MOON_CACHE, else
~/.cache/scarlet-moon; --classifier-cache DIR points at another folder (carry the cached
`classifier-*.safetensors` file there to get the very same classifier as another machine).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# Tracking stays off: an accidental `import mlflow` / `import wandb` fails at once, not after training.
for _blocked in ("mlflow", "wandb"):
    sys.modules.setdefault(_blocked, None)  # type: ignore[arg-type]

from scarlet_moon.backends import BackendOptions  # noqa: E402
from scarlet_moon.data.sprites import load_sprites  # noqa: E402
from scarlet_moon.eval.metrics import evaluate  # noqa: E402
from scarlet_moon.exporters.atomic import write_file  # noqa: E402
from scarlet_moon.options import SamplingOptions  # noqa: E402
from scarlet_moon.training.config import TrainConfig, preset  # noqa: E402

SCHEMA = "scarlet-moon-ablations/1"

# name -> (base preset, overrides, what it tests). Leave-one-out variants undo one choice of the
# default preset; the rest swap one thing in, or measure noise. Order = run order.
VARIANTS: dict[str, tuple[str, dict[str, Any], str]] = {
    "default": ("default", {}, "the default preset as is"),
    "linear": (
        "default",
        {"schedule": "linear"},
        "linear schedule (the ancestor's betas 1e-4..0.02, T=1000) instead of cosine",
    ),
    "eps": ("default", {"prediction": "eps"}, "eps-prediction instead of v"),
    "no-minsnr": ("default", {"loss_weighting": "none"}, "plain MSE instead of min-SNR weighting"),
    "no-hflip": ("default", {"hflip": False}, "no horizontal flips (no augmentation)"),
    "no-ema": ("default", {"ema_decay": 0.0}, "no EMA: sample with the raw weights"),
    "no-cfg": (
        "default",
        {"cond_drop": 0.0, "guidance": 1.0},
        "no label dropout, so no classifier-free guidance (sampled with guidance 1)",
    ),
    "guidance-1": ("default", {"guidance": 1.0}, "default's weights, sampled with guidance 1 (no retraining)"),
    "no-attention": ("default", {"attention": False}, "no self-attention at 4x4"),
    "arch-seed": (
        "default",
        {"arch": "seed"},
        "the ancestor's ContextUnet (bug fixed) at the default width n_feat 32, default recipe",
    ),
    "seed": ("seed", {}, "the seed preset as is (ancestor's recipe, DDPM 500 steps, guidance 1)"),
    # extras
    "arch-seed-f64": (
        "default",
        {"arch": "seed", "n_feat": 64},
        "the ancestor's ContextUnet at its own width n_feat 64, default recipe",
    ),
    "zsnr": ("default", {"schedule": "linear-zsnr"}, "zero-terminal-SNR linear schedule instead of cosine"),
    "eps-linear": (
        "default",
        {"prediction": "eps", "schedule": "linear"},
        "eps-prediction on the linear schedule (eps on cosine is ill-posed near t=T: abar_T ~ 2e-9)",
    ),
    "default-seed1": ("default", {"seed": 1}, "noise: default preset, training seed 1"),
    "default-evalseed1": ("default", {}, "noise: default's weights, sampling seed 1 (no retraining)"),
}
EVAL_SEED_OFFSET = {"default-evalseed1": 1}
SAMPLING_ONLY = ("sampler", "sample_steps", "guidance")  # do not change the trained weights
BOOKKEEPING = {"sample_every": 0, "checkpoint_every": 0, "log_every": 0}


def variant_config(name: str, steps: int) -> tuple[TrainConfig, dict[str, Any]]:
    base, overrides, _ = VARIANTS[name]
    return preset(base).replace(dict(overrides, steps=steps, **BOOKKEEPING), source=f"variant {name}"), overrides


def training_key(cfg: TrainConfig) -> str:
    d = {k: v for k, v in cfg.to_dict().items() if k not in SAMPLING_ONLY}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


def pick_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no CUDA device here")
    return name


def machine_info(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "cuda": torch.version.cuda,
        "gpu": None,
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
        info["cudnn"] = torch.backends.cudnn.version()
    try:
        info["git_commit"] = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
                cwd=Path(__file__).resolve().parent,
            ).stdout.strip()
            or None
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).resolve().parent,
        )
        info["git_dirty"] = bool(dirty.stdout.strip()) if dirty.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


def warm_up(device: str) -> None:
    """CUDA context and kernels start-up, so it is not billed to the first variant's training."""
    if not device.startswith("cuda"):
        return
    import torch

    from scarlet_moon.training.state import build_network

    net = build_network(TrainConfig(), channels=4, size=16, num_classes=6).to(device)
    x = torch.randn(64, 4, 16, 16, device=device)
    for _ in range(3):
        net(
            x, torch.zeros(64, device=device), torch.zeros(64, dtype=torch.int64, device=device)
        ).square().mean().backward()
    torch.cuda.synchronize()


def run_dir_of(name: str, cfg: TrainConfig, runs: Path) -> Path:
    """Named after the first variant with these weights, so `guidance-1` alone reuses `default`'s run."""
    key = training_key(cfg)
    owner = next((v for v in VARIANTS if training_key(variant_config(v, cfg.steps)[0]) == key), name)
    return runs / f"{owner}-{cfg.steps}-{key}"


def finished(run_dir: Path) -> bool:
    return (run_dir / "model.safetensors").is_file() and (run_dir / "bench.json").is_file()


def train(name: str, cfg: TrainConfig, data, runs: Path, device: str, log, jobs: int = 1) -> dict[str, Any]:
    """Train (or reuse a finished run of the same config); returns model path and timings."""
    from scarlet_moon.training.runs import train_run

    run_dir = run_dir_of(name, cfg, runs)
    run_name = run_dir.name
    sidecar = run_dir / "bench.json"
    if finished(run_dir):
        saved = json.loads(sidecar.read_text())
        log(f"  reusing the finished training {run_dir} ({saved['train_seconds']:.1f} s when trained)")
        return dict(saved, reused=True)
    if run_dir.exists():  # an unfinished run of ours (killed): start it again from scratch
        shutil.rmtree(run_dir)
    marks = {max(1, round(cfg.steps * k / 10)) for k in range(1, 11)}
    t_first: list[float] = []

    def progress(info) -> None:
        if info.step == 1:
            t_first.append(time.perf_counter())
        if info.step in marks:
            log(f"  step {info.step}/{info.total} loss {info.loss:.4f}  {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    res = train_run(cfg, data, runs_root=runs, trackers={}, name=run_name, device=device, progress=progress)
    total = time.perf_counter() - t0
    from scarlet_moon.backends import read_card

    params = read_card(res.model).meta.get("num_params")
    # per step: from the end of step 1 to the end of the run (model build and step 1 left out)
    per_step = (time.perf_counter() - t_first[0]) / max(1, cfg.steps - 1) if t_first else total / cfg.steps
    out = {
        "model": str(res.model),
        "run_dir": str(run_dir),
        "train_seconds": round(total, 2),
        "seconds_per_step": per_step,
        "num_params": params,
        "device": device,
        "parallel_jobs": jobs,
    }
    write_file(sidecar, json.dumps(out, indent=2).encode())
    return dict(out, reused=False)


def train_parallel(names: list[str], args, device: str, log, t_start: float) -> None:
    """Train the variants' distinct, unfinished configs in up to args.jobs worker processes at once.

    Each worker is this script with --train-only; its output goes to <runs>/logs/<run>.log. The
    main loop then finds the finished runs and only evaluates (a failed one it trains itself).
    """
    todo: dict[Path, str] = {}
    for name in names:
        run_dir = run_dir_of(name, variant_config(name, args.steps)[0], args.runs)
        if not finished(run_dir) and run_dir not in todo:
            todo[run_dir] = name
    if not todo:
        return
    logs = args.runs / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(max(1, (os.cpu_count() or 1) // args.jobs)))
    # the small ancestor networks last, so the four lanes end closer together
    queue = sorted(todo.items(), key=lambda kv: variant_config(kv[1], args.steps)[0].model.arch == "seed")
    running: list[tuple[subprocess.Popen, str, Path, float, Any]] = []
    log(f"training {len(queue)} config(s), {args.jobs} at a time (logs in {logs})")
    while queue or running:
        if queue and args.time_budget and time.perf_counter() - t_start > args.time_budget:
            log(f"  time budget {args.time_budget:g} s reached: {len(queue)} config(s) not started")
            queue = []
        while queue and len(running) < args.jobs:
            run_dir, name = queue.pop(0)
            out = (logs / f"{run_dir.name}.log").open("w")
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--train-only",
                "--variants",
                name,
                "--steps",
                str(args.steps),
                "--runs",
                str(args.runs),
                "--device",
                device,
                "--jobs",
                str(args.jobs),
            ]
            running.append(
                (
                    subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env),
                    name,
                    run_dir,
                    time.perf_counter(),
                    out,
                )
            )
            log(f"  started {name} (pid {running[-1][0].pid})")
        time.sleep(0.5)
        for item in list(running):
            proc, name, run_dir, t0, out = item
            if proc.poll() is None:
                continue
            running.remove(item)
            out.close()
            if proc.returncode == 0 and finished(run_dir):
                log(f"  finished {name} in {time.perf_counter() - t0:.1f} s")
            else:
                tail = (logs / f"{run_dir.name}.log").read_text(errors="replace").strip().splitlines()[-5:]
                log(
                    f"  FAILED {name} (exit {proc.returncode}); the main loop will train it. Log tail:\n    "
                    + "\n    ".join(tail)
                )


def figures_of(ev: dict[str, Any]) -> dict[str, Any]:
    return {
        "fd": ev["frechet"]["distance"],
        "conditional_accuracy": ev["conditional_accuracy"]["overall"],
        "copies": ev["copies"]["share"],
        "colours_per_sprite": ev["pixels"]["colours_per_sprite"]["candidates"],
        "alpha_crispness": ev["pixels"]["alpha_crispness"]["candidates"],
        "mean_nearest": ev["copies"].get("mean_nearest"),
    }


# ------------------------------------------------------------------ Markdown
def _num(v: Any, fmt: str) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def _delta(v: float | None, ref: float | None, fmt: str, scale: float = 1.0, unit: str = "", rel: bool = False) -> str:
    if v is None or ref is None:
        return ""
    d = (v - ref) * scale
    s = f"{d:+{fmt}}{unit}"
    if rel and ref:
        s += f", {100 * (v - ref) / ref:+.0f}%"
    return f" ({s})"


def real_colours(results: dict[str, Any]) -> float | None:
    if results.get("real_floor"):
        return results["real_floor"]["colours_per_sprite"]
    for r in results["variants"].values():
        if "eval" in r:
            return r["eval"]["pixels"]["colours_per_sprite"]["real"]
    return None


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    ref = (results["variants"].get("default") or {}).get("figures")
    lines = [
        f"# Ablations of the default preset ({results['steps']} training steps, {results['count']} sprites)",
        "",
        f"Machine: {m.get('gpu') or m.get('processor') or m.get('machine')} ({m['device']}), "
        f"{m['cpu_count']} CPU cores, torch {m['torch']}, Python {m['python']}; "
        f"commit {m.get('git_commit') or 'unknown'}{' + local changes' if m.get('git_dirty') else ''}; "
        f"{results['created']}.",
        "",
        "One change at a time on the default preset (unless the base says otherwise), same data, same seed, "
        "same number of steps; each variant sampled with its own sampler settings. In brackets: the change "
        "versus `default` (FD: absolute and relative; copies: percentage points). Lower FD is better; "
        "conditional accuracy higher; colours per sprite closer to the real "
        f"{_num(real_colours(results), '.1f')}. "
        "The `default-seed1` / `default-evalseed1` rows are the noise: a change smaller than theirs is "
        "not a measured effect.",
        "",
        "| variant | change | params | sampler | FD | cond. accuracy | copies | colours/sprite | crisp | "
        "train s | s/step |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results["variants"].items():
        if "figures" not in r:
            lines.append(f"| `{name}` | {r['what']} | | | {r.get('status', 'not run')} | | | | | | |")
            continue
        f, e, t = r["figures"], r["eval_settings"], r["training"]
        is_ref = name == "default" or ref is None
        g = (lambda *a, **k: "") if is_ref else _delta
        lines.append(
            f"| `{name}` | {r['what']} | {_num((t.get('num_params') or 0) / 1e6, '.2f')}M | "
            f"{e['sampler']} {e['steps']}, g {e['guidance']:g}" + (f", seed {e['seed']}" if e["seed"] else "") + " | "
            f"{f['fd']:.2f}{g(f['fd'], ref and ref['fd'], '.2f', rel=True)} | "
            f"{f['conditional_accuracy']:.3f}{g(f['conditional_accuracy'], ref and ref['conditional_accuracy'], '.3f')} | "
            f"{100 * f['copies']:.1f}%{g(f['copies'], ref and ref['copies'], '.1f', 100, ' pp')} | "
            f"{f['colours_per_sprite']:.1f}{g(f['colours_per_sprite'], ref and ref['colours_per_sprite'], '.1f')} | "
            f"{f['alpha_crispness']:.3f} | "
            + (
                f"same weights as `{t['shared_with']}` | |"
                if t.get("shared_with")
                else f"{_num(t.get('train_seconds'), '.1f')} | {_num(t.get('seconds_per_step'), '.4f')} |"
            )
        )
    rf = results.get("real_floor")
    if rf:
        lines.append(
            f"| real held-out (floor) | the real sprites | | | {rf['fd']:.2f} | "
            f"{rf['conditional_accuracy']:.3f} (classifier accuracy) | {100 * rf['copies']:.1f}% | "
            f"{rf['colours_per_sprite']:.1f} | {rf['alpha_crispness']:.3f} | | |"
        )
    jobs = sorted(
        {(r.get("training") or {}).get("parallel_jobs") or 1 for r in results["variants"].values() if "training" in r}
    )
    if jobs and jobs != [1]:
        lines += [
            "",
            f"Training times were measured with up to {max(jobs)} trainings sharing the device at once "
            "(--jobs): compare them with each other only, not with one-at-a-time runs.",
        ]
    c = results.get("classifier") or {}
    lines += [
        "",
        f"Eval classifier: {c.get('file')} (held-out accuracy {_num(c.get('held_out_accuracy'), '.3f')}, "
        f"{'from the cache' if c.get('cached') else 'trained in this run'}).",
        "",
    ]
    return "\n".join(lines)


def merge(files: list[Path], out: Path) -> None:
    parts = [json.loads(Path(f).read_text()) for f in files]
    base = dict(parts[0])
    keys = ("steps", "count", "eval_seed", "data_fingerprint")
    for f, p in zip(files[1:], parts[1:]):
        differ = [k for k in keys if p.get(k) != base.get(k)]
        if differ or p["machine"].get("gpu") != base["machine"].get("gpu"):
            sys.exit(f"{f} differs from {files[0]} in {', '.join(differ) or 'machine'}; not merging")
    variants: dict[str, Any] = {}
    for p in parts:
        variants.update({k: v for k, v in p["variants"].items() if "figures" in v or k not in variants})
    base["variants"] = {k: variants[k] for k in VARIANTS if k in variants}
    base["variants"].update({k: v for k, v in variants.items() if k not in base["variants"]})
    base["jobs"] = max(p.get("jobs", 1) for p in parts)
    base["merged_from"] = [str(f) for f in files]
    base["real_floor"] = next((p["real_floor"] for p in parts if p.get("real_floor")), None)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_file(out, json.dumps(base, indent=2, default=float).encode())
    write_file(out.with_suffix(".md"), markdown(base).encode())
    print(markdown(base))


# ------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="variants:\n" + "\n".join(f"  {k:18s} {v[2]}" for k, v in VARIANTS.items()),
    )
    ap.add_argument("--steps", type=int, default=2000, help="training steps per variant (default 2000)")
    ap.add_argument("--count", type=int, default=600, help="generated sprites per evaluation (default 600)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset (default: all, in order)")
    ap.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="torch device for training and sampling (auto: cuda when torch sees one)",
    )
    ap.add_argument("--eval-seed", type=int, default=0, help="sampling seed of the evaluations (default 0)")
    ap.add_argument(
        "--classifier-cache",
        type=Path,
        default=None,
        help="folder of the cached eval classifier (default: $SCARLET_MOON_CACHE, else ~/.cache/scarlet-moon)",
    )
    ap.add_argument(
        "--runs",
        type=Path,
        default=Path("sm-runs/ablations"),
        help="run folders; finished trainings there are reused (default sm-runs/ablations)",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=Path("bench/results/ablations.json"),
        help="JSON results; the Markdown table goes beside it with .md",
    )
    ap.add_argument(
        "--time-budget",
        type=float,
        default=0,
        help="seconds: variants that would start after this are skipped (0 = no limit)",
    )
    ap.add_argument("--no-real", action="store_true", help="skip the real held-out floor row")
    ap.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="train this many variants at once in worker processes (a small model leaves a GPU "
        "mostly idle, so 3-4 fit on one); their train seconds are then measured under "
        "that contention (default 1: one at a time, clean timings)",
    )
    ap.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="no training: combine the results files of several calls (later files win for a "
        "variant in both) into --out and its .md, then exit",
    )
    ap.add_argument("--train-only", action="store_true", help=argparse.SUPPRESS)  # a --jobs worker
    args = ap.parse_args()
    if args.merge:
        merge(args.merge, args.out)
        return

    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    t_start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", flush=True)

    device = pick_device(args.device)
    data = load_sprites(None)
    if args.train_only:
        warm_up(device)
        for name in names:
            cfg, _ = variant_config(name, args.steps)
            tr = train(name, cfg, data, args.runs, device, log, jobs=args.jobs)
            log(f"{name}: trained in {tr['train_seconds']:.1f} s")
        return
    results: dict[str, Any] = {
        "schema": SCHEMA,
        "machine": machine_info(device),
        "steps": args.steps,
        "count": args.count,
        "eval_seed": args.eval_seed,
        "jobs": args.jobs,
        "data": data.source,
        "data_fingerprint": data.fingerprint(),
        "variants": {},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    m = results["machine"]
    log(
        f"device {device} ({m.get('gpu') or m['machine']}), torch {m['torch']}, {m['cpu_count']} cores; "
        f"variants: {', '.join(names)}"
    )
    md_path = args.out.with_suffix(".md")

    def write() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        results["seconds"] = round(time.perf_counter() - t_start, 1)
        write_file(args.out, json.dumps(results, indent=2, default=float).encode())
        write_file(md_path, markdown(results).encode())

    # the classifier first: trained here once when the cache has none (then cached for every eval)
    from scarlet_moon.eval.classifier import default_cache_dir, get_classifier

    tc = time.perf_counter()
    clf, _, _ = get_classifier(data, cache_dir=args.classifier_cache)
    results["classifier"] = {
        "file": str(clf.cache_path),
        "cached": clf.info.get("cached"),
        "cache_dir": str(args.classifier_cache or default_cache_dir()),
        "held_out_accuracy": clf.info.get("held_out_accuracy"),
        "torch_version": clf.info.get("torch_version"),
    }
    log(
        f"eval classifier {'loaded from' if clf.info.get('cached') else 'TRAINED (no cached file) ->'} "
        f"{clf.cache_path} in {time.perf_counter() - tc:.1f} s"
    )
    if not clf.info.get("cached"):
        log(
            "  warning: a classifier trained on this machine may differ from another machine's; carry the cached "
            "file and pass --classifier-cache to compare figures across machines"
        )
    if not args.no_real:
        ev = evaluate(None, data, real=True, cache_dir=args.classifier_cache)
        results["real_floor"] = figures_of(ev)
        log(
            f"real held-out floor: FD {results['real_floor']['fd']:.2f}, "
            f"accuracy {results['real_floor']['conditional_accuracy']:.3f}"
        )
    for name in names:
        results["variants"][name] = {"what": VARIANTS[name][2], "status": "pending"}
    write()
    warm_up(device)
    if args.jobs > 1:
        train_parallel(names, args, device, log, t_start)

    trained: dict[str, tuple[str, dict[str, Any]]] = {}  # training key -> (variant, training record)
    longest = 0.0
    for i, name in enumerate(names, 1):
        cfg, overrides = variant_config(name, args.steps)
        key = training_key(cfg)
        rec: dict[str, Any] = {
            "what": VARIANTS[name][2],
            "base_preset": VARIANTS[name][0],
            "overrides": overrides,
            "config": cfg.to_dict(),
            "training_key": key,
        }
        elapsed = time.perf_counter() - t_start
        needs_training = key not in trained and not finished(run_dir_of(name, cfg, args.runs))
        if args.time_budget and needs_training and elapsed + longest > args.time_budget:
            rec["status"] = f"skipped: time budget {args.time_budget:g} s (at {elapsed:.0f} s)"
            results["variants"][name] = rec
            log(f"[{i}/{len(names)}] {name}: {rec['status']}")
            write()
            continue
        log(f"[{i}/{len(names)}] {name}: {VARIANTS[name][2]}  overrides {json.dumps(overrides)}")
        tv = time.perf_counter()
        if key in trained:
            owner, tr = trained[key]
            tr = dict(tr, shared_with=owner)
            log(f"  same trained weights as {owner} (sampling settings differ only)")
        else:
            tr = train(name, cfg, data, args.runs, device, log)
            owner = run_dir_of(name, cfg, args.runs).name.rsplit("-", 2)[0]
            if owner != name:  # e.g. guidance-1 run without default: default's weights, trained earlier
                tr = dict(tr, shared_with=owner)
            trained[key] = (owner, tr)
            log(
                f"  {'trained (by a worker or an earlier run)' if tr['reused'] else 'trained'} in {tr['train_seconds']:.1f} s "
                f"({tr['seconds_per_step'] * 1000:.1f} ms/step), {tr['num_params'] / 1e6:.2f}M params"
            )
        eval_seed = args.eval_seed + EVAL_SEED_OFFSET.get(name, 0)
        settings = {
            "sampler": cfg.sampler,
            "steps": cfg.sample_steps,
            "guidance": cfg.guidance,
            "seed": eval_seed,
            "count": args.count,
        }
        te = time.perf_counter()
        ev = evaluate(
            tr["model"],
            data,
            count=args.count,
            seed=eval_seed,
            sampling=SamplingOptions(cfg.sampler, cfg.sample_steps, cfg.guidance),
            backend=BackendOptions(device=device),
            cache_dir=args.classifier_cache,
        )
        settings["seconds"] = round(time.perf_counter() - te, 2)
        settings["generation_seconds"] = (ev.get("generation") or {}).get("seconds")
        rec.update(
            status="done",
            training=tr,
            eval_settings=settings,
            figures=figures_of(ev),
            per_label_accuracy=ev["conditional_accuracy"]["per_label"],
            eval=ev,
            seconds=round(time.perf_counter() - tv, 1),
        )
        results["variants"][name] = rec
        f = rec["figures"]
        log(
            f"  eval {cfg.sampler} {cfg.sample_steps} g {cfg.guidance:g} seed {eval_seed}: FD {f['fd']:.2f}, "
            f"accuracy {f['conditional_accuracy']:.3f}, copies {100 * f['copies']:.1f}%, colours "
            f"{f['colours_per_sprite']:.1f}, crisp {f['alpha_crispness']:.3f} ({settings['seconds']:.1f} s eval, "
            f"{rec['seconds']:.1f} s variant)"
        )
        longest = max(longest, rec["seconds"])
        write()
    log(f"done in {time.perf_counter() - t_start:.1f} s -> {args.out}, {md_path}")
    print(markdown(results), flush=True)


if __name__ == "__main__":
    main()
