"""Large sheets: peak memory and wall time of `sm sheet --count N --backend onnx` end to end.

    .venv/bin/python bench/large_sheet.py --count 2000            # a few minutes on 2 cores
    .venv/bin/python bench/large_sheet.py --count 100000          # ~40 min on 2 cores
    .venv/bin/python bench/large_sheet.py --count 2000 20000 --sm-args "--steps 1"   # sampling cut to 1 step
    .venv/bin/python bench/large_sheet.py --pack-only --count 20000 100000 --out bench/results/large_sheet_pack
                                                                  # packing + atlases alone, no model

Each count runs once under GNU time (`/usr/bin/time -v`; Debian/Ubuntu package `time`), in a
fresh process: the bundled model (or --model) exported once with `sm export-onnx`, then
`sm -q sheet --model m.onnx --backend onnx --count N --seed 0 --format json-hash,godot3,libgdx`
into a temporary folder. Reported: "Maximum resident set size" (peak RSS of the sm process),
wall time, sprites per second, pages and bytes written. Writes <out>.json and <out>.md.

Bound (scarlet_moon.generation.chunks): sampling runs in fixed chunks of CHUNK_SIZE sprites, so the
sampling state (noise, network activations) is that of one chunk whatever the count; what grows
with the count is the finished sprites (uint8, 1 KiB each at 16x16 RGBA) and the packed
sheet/atlas data, which the writer builds in memory before writing all files atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scarlet_moon.generation.chunks import CHUNK_SIZE  # noqa: E402

GNU_TIME = "/usr/bin/time"
FORMATS = "json-hash,godot3,libgdx"


def sm_exe() -> list[str]:
    venv = ROOT / ".venv" / "bin" / "sm"
    return [str(venv)] if venv.is_file() else [sys.executable, "-m", "scarlet_moon.cli.main"]


def export(model: str | None, folder: Path) -> Path:
    out = folder / "model.onnx"
    cmd = [*sm_exe(), "-q", "export-onnx", "--out", str(out), *(["--model", model] if model else [])]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return out


def parse_time_v(text: str) -> dict[str, float]:
    """Peak RSS (MiB), wall seconds, user/system CPU seconds from GNU time -v output."""

    def field(name: str) -> str:
        m = re.search(rf"^\s*{re.escape(name)}:\s*(.+)$", text, re.M)
        if not m:
            raise ValueError(f"GNU time output has no {name!r}")
        return m.group(1).strip()

    wall = 0.0
    for part in field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":"):
        wall = wall * 60 + float(part)
    return {
        "max_rss_mib": round(int(field("Maximum resident set size (kbytes)")) / 1024, 1),
        "wall_s": round(wall, 2),
        "user_s": float(field("User time (seconds)")),
        "sys_s": float(field("System time (seconds)")),
    }


def run_one(model: Path, count: int, folder: Path, sm_args: list[str]) -> dict:
    out = folder / f"sheet{count}"
    out.mkdir()
    cmd = [
        GNU_TIME,
        "-v",
        *sm_exe(),
        "-q",
        "sheet",
        "--model",
        str(model),
        "--backend",
        "onnx",
        "--count",
        str(count),
        "--seed",
        "0",
        "--format",
        FORMATS,
        *sm_args,
        "--out",
        str(out / "s.png"),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"sm sheet failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    files = sorted(out.iterdir())
    row = {
        "count": count,
        **parse_time_v(proc.stderr),
        "pages": len([f for f in files if f.suffix == ".png"]),
        "bytes_written": sum(f.stat().st_size for f in files),
        "files": len(files),
        "command": shlex.join(["sm", *cmd[cmd.index("-q") :]]),
    }
    row["sprites_per_s"] = round(count / row["wall_s"], 1)
    shutil.rmtree(out)
    return row


def pack_only_child(count: int, folder: str) -> None:
    """The packing and writing half alone (no model): `count` random 16x16 sprites with the atlas
    data `sm sheet` gives them, through scarlet_moon.pipelines.sheet.write_sheet (the same code path)."""
    import numpy as np
    from PIL import Image

    from scarlet_moon.exporters import PackOptions, Sprite
    from scarlet_moon.pipelines.sheet import SheetTarget, write_sheet

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, 16, 16, 4), dtype=np.uint8)
    images[..., 3] = 255
    common = {
        "seed": 0,
        "sampler": "dpmpp-2m",
        "steps": 25,
        "guidance": 2.0,
        "count": count,
        "chunk_size": CHUNK_SIZE,
        "model_fingerprint": "0123456789abcdef",
        "model_step": 40000,
    }
    sprites = [
        Sprite(
            f"hero_{i:03d}",
            Image.fromarray(images[i], "RGBA"),
            label="hero",
            meta=dict(common, label="hero", label_index=5, batch_index=i),
        )
        for i in range(count)
    ]
    write_sheet(
        sprites,
        SheetTarget.check(Path(folder) / "s.png", FORMATS.split(",")),
        PackOptions(padding=1, extrude=0, scale=1, pot=False, max_size=4096, trim=False, dedupe=True),
    )


def run_pack_only(count: int, folder: Path) -> dict:
    out = folder / f"pack{count}"
    out.mkdir()
    cmd = [GNU_TIME, "-v", sys.executable, __file__, "--pack-only-child", str(count), str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"pack-only run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    files = sorted(out.iterdir())
    row = {
        "count": count,
        **parse_time_v(proc.stderr),
        "pages": len([f for f in files if f.suffix == ".png"]),
        "bytes_written": sum(f.stat().st_size for f in files),
        "files": len(files),
        "command": "pack only: random sprites -> scarlet_moon.pipelines.sheet.write_sheet",
    }
    row["sprites_per_s"] = round(count / row["wall_s"], 1)
    shutil.rmtree(out)
    return row


def machine() -> dict:
    import onnxruntime

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "onnxruntime": onnxruntime.__version__,
        "load_avg_at_start": os.getloadavg(),
    }


def markdown(doc: dict) -> str:
    rows = [
        "| sprites | peak RSS (MiB) | wall (s) | sprites/s | pages | bytes written |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in doc["runs"]:
        rows.append(
            f"| {r['count']} | {r['max_rss_mib']} | {r['wall_s']} | {r['sprites_per_s']} | {r['pages']} "
            f"| {r['bytes_written']} |"
        )
    m = doc["machine"]
    return "\n".join(
        [
            "# Large sheets: `sm sheet --backend onnx --count N`",
            "",
            f"Peak RSS from `/usr/bin/time -v`, one fresh process per count; chunks of {doc['chunk_size']} sprites; "
            f"formats {FORMATS}; extra sm args: `{doc['sm_args'] or '-'}`"
            + ("; PACK ONLY: random sprites, no model or sampling." if doc.get("pack_only") else "."),
            "",
            *rows,
            "",
            f"Machine: {m['platform']}, {m['cpus']} CPUs, Python {m['python']}, onnxruntime {m['onnxruntime']}, "
            f"load average at start {', '.join(f'{x:.1f}' for x in m['load_avg_at_start'])}.",
            "",
            f"Command of the last run: `{doc['runs'][-1]['command']}`",
            "",
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, nargs="+", default=[2000])
    ap.add_argument("--model", default=None, help="a .safetensors (exported here) or .onnx; default: bundled")
    ap.add_argument("--sm-args", default="", help='extra `sm sheet` arguments, e.g. "--steps 1 --max-size 2048"')
    ap.add_argument(
        "--pack-only",
        action="store_true",
        help="measure packing + atlas writing alone (random sprites, no model, no sampling)",
    )
    ap.add_argument("--pack-only-child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "large_sheet"))
    args = ap.parse_args()
    if args.pack_only_child:
        return pack_only_child(int(args.pack_only_child[0]), args.pack_only_child[1])
    if not Path(GNU_TIME).is_file():
        raise SystemExit(f"{GNU_TIME} is missing: apt-get install time")
    doc = {
        "machine": machine(),
        "chunk_size": CHUNK_SIZE,
        "sm_args": args.sm_args,
        "pack_only": args.pack_only,
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="sm-large-") as tmp:
        folder = Path(tmp)
        model = None
        if not args.pack_only:
            model = Path(args.model) if args.model and args.model.endswith(".onnx") else export(args.model, folder)
        for count in args.count:
            row = (
                run_pack_only(count, folder)
                if model is None
                else run_one(model, count, folder, shlex.split(args.sm_args))
            )
            doc["runs"].append(row)
            print(json.dumps(row), flush=True)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(doc))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
