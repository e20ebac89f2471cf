"""The one output-path policy (scarlet_moon.outputs), rule by rule, through the library and the commands:
an output never names an input, an existing file is replaced only with --force, only regular files are
ever replaced, and two runs cannot claim one output."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from scarlet_moon.cli.main import sm
from scarlet_moon.errors import BadInput
from scarlet_moon.models.card import BUNDLED_PRIOR
from scarlet_moon.outputs import check_output, claim, lock_path


def run(*args: str):
    return CliRunner().invoke(sm, list(args))


def one_line_error(res, *needles: str) -> None:
    assert res.exit_code == 2, res.output
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.output
    for n in needles:
        assert n in res.stderr, res.stderr


def sprites_folder(root: Path, n: int = 3) -> Path:
    root.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((16, 16, 4), 40 * i, np.uint8), "RGBA").save(root / f"hero_{i:03d}.png")
    return root


# --- the rules, in the library ---------------------------------------------------------------------


def test_an_input_file_a_link_to_it_and_a_file_inside_an_input_folder_are_refused(tmp_path: Path):
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"weights")
    (tmp_path / "link.safetensors").symlink_to(model)
    os.link(model, tmp_path / "hard.safetensors")
    for out in (model, tmp_path / "link.safetensors", tmp_path / "hard.safetensors"):
        with pytest.raises(BadInput, match="is an input of this run"):
            check_output(out, "--out", inputs=[model], force=True)
    data = sprites_folder(tmp_path / "set")
    with pytest.raises(BadInput, match="inside the input folder"):
        check_output(data / "new.png", "--out", inputs=[data])
    assert check_output(tmp_path / "new.json", "--out", inputs=[model, data]) == tmp_path / "new.json"


def test_an_existing_file_needs_force_and_only_a_regular_file_is_ever_replaced(tmp_path: Path):
    old = tmp_path / "old.json"
    old.write_text("{}")
    with pytest.raises(BadInput, match="already exists; pass .*force"):
        check_output(old, "--out")
    assert check_output(old, "--out", force=True) == old
    os.mkfifo(tmp_path / "fifo")
    for special in (tmp_path / "fifo", Path("/dev/null")):
        with pytest.raises(BadInput, match="not a regular file"):
            check_output(special, "--out", force=True)
    with pytest.raises(BadInput, match="is a folder"):
        check_output(tmp_path, "--out", force=True)


def test_a_claimed_output_is_refused_to_a_second_claim_and_free_again_after(tmp_path: Path):
    out = tmp_path / "sheet.png"
    with claim([out], "--out"):
        assert lock_path(out).exists() and tmp_path not in lock_path(out).parents  # never beside the user's files
        with pytest.raises(BadInput, match="being written by another run"):
            with claim([out], "--out"):
                pass
    assert not lock_path(out).exists()  # nothing left behind
    with claim([out], "--out"):
        pass


# --- the rules, through the commands ---------------------------------------------------------------


def test_eval_refuses_to_write_over_its_model_and_a_device(tmp_path: Path):
    model = tmp_path / "m.safetensors"
    shutil.copy(BUNDLED_PRIOR, model)
    before = model.read_bytes()
    one_line_error(run("eval", "--model", str(model), "--out", str(model), "--force"), "is an input of this run")
    assert model.read_bytes() == before
    one_line_error(run("eval", "--real", "--out", "/dev/null", "--force"), "not a regular file")
    assert Path("/dev/null").is_char_device()


def test_distill_refuses_to_replace_its_own_teacher(tmp_path: Path):
    teacher = tmp_path / "t.safetensors"
    shutil.copy(BUNDLED_PRIOR, teacher)
    one_line_error(
        run("distill", "--model", str(teacher), "--out", str(teacher), "--steps", "1"), "is an input of this run"
    )
    assert teacher.read_bytes() == BUNDLED_PRIOR.read_bytes()


def test_sample_needs_force_to_replace_sprites_and_its_grid_cannot_be_one_of_them(tmp_path: Path):
    out = tmp_path / "s"
    args = ("sample", "--count", "2", "--steps", "2", "--out", str(out))
    assert run(*args).exit_code == 0
    first = (out / "creature_000.png").read_bytes()
    one_line_error(run(*args, "--seed", "5"), "already exists; pass --force")
    assert (out / "creature_000.png").read_bytes() == first
    one_line_error(run(*args, "--force", "--grid", str(out / "creature_001.png")), "one of the sprite files")
    assert run(*args, "--force", "--seed", "5").exit_code == 0


def test_data_inspect_never_writes_its_preview_into_the_set(tmp_path: Path):
    data = sprites_folder(tmp_path / "set" / "hero")
    before = (data / "hero_000.png").read_bytes()
    one_line_error(
        run("data", "inspect", str(tmp_path / "set"), "--preview", str(data / "hero_000.png")),
        "inside the input folder",
    )
    assert (data / "hero_000.png").read_bytes() == before


def test_sheet_from_a_folder_never_packs_into_it_and_refuses_generation_options(tmp_path: Path):
    src = sprites_folder(tmp_path / "frames")
    one_line_error(run("sheet", "--from", str(src), "--out", str(src / "x.png"), "--force"), "inside the input folder")
    assert sorted(p.name for p in src.iterdir()) == ["hero_000.png", "hero_001.png", "hero_002.png"]
    one_line_error(
        run("sheet", "--from", str(src), "--label", "5", "--out", str(tmp_path / "x.png")),
        "--label does not apply with --from",
    )


def test_a_second_sheet_run_on_one_output_is_refused_while_the_first_holds_it(tmp_path: Path):
    out = tmp_path / "hero.png"
    with claim([out], "--out"):  # what a first `sm sheet` holds while it samples and writes
        one_line_error(run("sheet", "--count", "2", "--steps", "2", "--out", str(out)), "being written by another run")
    assert not out.exists()
    res = run("sheet", "--count", "2", "--steps", "2", "--out", str(out))
    assert res.exit_code == 0 and out.is_file() and not lock_path(out).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hero.json", "hero.png"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize(
    "args",
    [
        ["sheet", "--count", "2", "--out", "/proc/x.png"],
        ["sample", "--count", "2", "--out", "/proc/samples"],
        ["eval", "--real", "--out", "/proc/e.json"],
        ["plugin", "aseprite", "--out", "/proc/ext"],
    ],
    ids=["sheet", "sample", "eval", "plugin"],
)
def test_a_folder_the_system_will_not_write_is_refused_before_the_work(args: list[str]):
    """/proc passes os.access for root (CI runs as root): a file is really made there (and removed) before
    any sampling, so the refusal is one line and exit 2, not a failed write after the work."""
    res = run(*args)
    one_line_error(res)
    assert "cannot be written" in res.stderr or "not writable" in res.stderr or "not a writable" in res.stderr
    assert "backend:" not in res.stderr  # nothing was sampled


# --- memory from the options (scarlet_moon.memory) -------------------------------------------------


def peak_of(args: list[str], tmp_path: Path) -> tuple[int, str, int]:
    """(exit code, stderr, peak resident KB) of `sm ARGS` in a fresh process."""
    import subprocess
    import sys

    probe = (
        "import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(p.returncode); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
        "sys.stderr.write(p.stderr)"
    )
    res = subprocess.run(
        [sys.executable, "-c", probe, sys.executable, "-m", "scarlet_moon.cli.main", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    code, peak = res.stdout.split()
    return int(code), res.stderr, int(peak)


def test_a_config_that_cannot_fit_and_an_absurd_eval_count_are_refused_before_any_allocation(tmp_path: Path):
    """The 22 GB TOML (each value inside its own limit) and `sm eval --count 10**18`: one line, exit 2, in a
    process that never grew past 300 MB (torch is not even imported for the first)."""
    (tmp_path / "big.toml").write_text("n_feat = 1024\nchannel_mult = [16, 16]\n")
    code, err, peak = peak_of(["train", "--config", "big.toml", "--tracking", "none"], tmp_path)
    assert code == 2 and "needs about" in err and "over the budget" in err and len(err.strip().splitlines()) == 1
    assert peak < 300 * 1024 and not (tmp_path / "sm-runs").exists()
    code, err, peak = peak_of(["eval", "--count", str(10**18)], tmp_path)
    assert code == 2 and "--count" in err and peak < 300 * 1024


def test_the_budget_follows_sm_memory_budget(monkeypatch):
    from scarlet_moon import memory

    monkeypatch.setenv("SM_MEMORY_BUDGET", "1.5G")
    assert memory.budget() == int(1.5 * (1 << 30))
    with pytest.raises(BadInput, match="over the budget of 1.5 GB"):
        memory.check(2 << 30, "this")
    memory.check(1 << 30, "this")
    monkeypatch.setenv("SM_MEMORY_BUDGET", "lots")
    with pytest.raises(BadInput, match="SM_MEMORY_BUDGET='lots'"):
        memory.budget()


def test_a_distillation_batch_that_cannot_fit_is_refused_before_the_teacher_is_built(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SM_MEMORY_BUDGET", "16G")  # the same on any machine
    code, err, peak = peak_of(
        [
            "distill",
            "--model",
            "bundled-25",
            "--few-step",
            "4",
            "--batch",
            "60000",
            "--steps",
            "1",
            "--out",
            "s.safetensors",
        ],
        tmp_path,
    )
    assert code == 2 and "distillation (n_feat 32" in err and "batch 60000 of 16x16" in err and "over the budget" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "s.safetensors").exists()
    assert peak < 600 * 1024  # the step would need about 217 GB; torch's import is most of the peak


def test_the_networks_parameter_count_is_counted_exactly_without_building_it():
    from scarlet_moon import memory
    from scarlet_moon.models.card import read_checkpoint_card

    card = read_checkpoint_card(BUNDLED_PRIOR)
    cfg = card.config
    params, _ = memory.unet_footprint(cfg["n_feat"], cfg["channel_mult"], 4, (16, 16), len(card.label_names))
    assert params == card.meta["num_params"] == 3_022_660


def test_a_card_claiming_a_wider_network_than_its_weights_is_refused_before_building_it(tmp_path: Path):
    import json

    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(BUNDLED_PRIOR), "np") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    card = json.loads(meta["scarlet_moon"])
    card["config"]["n_feat"] = 1024  # inside its limit; 3 billion parameters if built
    liar = tmp_path / "liar.safetensors"
    save_file(tensors, str(liar), metadata={"scarlet_moon": json.dumps(card)})
    code, err, peak = peak_of(["sample", "--model", str(liar), "--backend", "torch", "--count", "1"], tmp_path)
    assert code == 2 and "describes a network of 3,080,153,092 parameters" in err and "stores 3,022,660" in err
    assert peak < 600 * 1024  # torch's import is most of it; building the network would take gigabytes
