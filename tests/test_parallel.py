"""Writing a sheet over worker processes (scarlet_moon.exporters.parallel): the same bytes as one process, the same
error when a worker fails, and nothing written then."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

import scarlet_moon.exporters.parallel as parallel
from scarlet_moon.cli.main import sm
from scarlet_moon.exporters import AtlasFormat, AtlasTarget, PackResult, Page, Sprite, pack, write_atlases
from scarlet_moon.exporters.parallel import AUTO_MIN_PIXELS, auto_workers

FORMATS = ["json-hash", "json-array", "aseprite", "godot3", "godot4", "libgdx", "sparrow", "love", "unity"]


def sprites(n: int = 40) -> list[Sprite]:
    out = []
    for i in range(n):
        img = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
        img.paste((7 * i % 256, 255 - 5 * i % 256, 90, 255), (i % 5, i % 3, 16 - i % 4, 16))
        out.append(
            Sprite(
                f"{('walk', 'idle')[i % 2]}_{i:03d}",
                img,
                label=("walk", "idle")[i % 2],
                meta={"seed": i, "note": 'a"b ü'},
            )
        )
    return out


def written(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


class PixelSum(AtlasFormat):
    """A format that reads page pixels (reads_pixels stays True): rendered in the parent when spawned."""

    name, suffix, description = "pixel-sum", ".sum.txt", "test"

    def render(self, target: AtlasTarget) -> str:
        return "\n".join(f"{img} {sum(p.image.tobytes())}" for p, img in zip(target.pages, target.images)) + "\n"


class Exits(AtlasFormat):
    """A format whose render kills the process running it (a worker dying mid-job)."""

    name, suffix, description = "exits", ".x", "test"

    def render(self, target: AtlasTarget) -> str:
        os._exit(3)


@pytest.fixture
def packed() -> PackResult:
    result = pack(sprites(), max_size=64)  # 9 sprites of 16x16 per 64x64 page: 5 pages
    assert len(result.pages) == 5
    return result


def write(result: PackResult, folder: Path, workers: int | None, formats=FORMATS, **kw) -> dict[str, bytes]:
    folder.mkdir()
    write_atlases(result, folder / "s.png", formats, workers=workers, **kw)
    return written(folder)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_parallel_files_are_byte_identical_to_one_process(packed, tmp_path, monkeypatch, method):
    """Every page PNG and every atlas (per-page and whole-sheet formats, phaser-multi too) is the same
    bytes with 2 or 3 worker processes, forked or spawned, as with one."""
    if method == "fork" and parallel.start_method() != "fork":
        pytest.skip("fork is used on Linux only")
    monkeypatch.setattr(parallel, "start_method", lambda: method)
    one = write(packed, tmp_path / "one", 1)
    assert sum(n.endswith(".png") for n in one) == 5 and "s.multi.json" in one and "s-4.atlas" not in one
    assert len(one) > 5 + 9
    for workers in (2, 3):
        assert write(packed, tmp_path / f"w{workers}", workers) == one


def test_a_format_reading_pixels_is_identical_when_spawned(packed, tmp_path, monkeypatch):
    """reads_pixels=True formats are rendered in the parent under spawn; the set is still the same."""
    import scarlet_moon.exporters.registry as registry

    base = registry.available_formats

    def with_sum():
        return {**base(), "pixel-sum": PixelSum()}

    monkeypatch.setattr(registry, "available_formats", with_sum)
    one = write(packed, tmp_path / "one", 1, formats=["pixel-sum", "json-hash"])
    monkeypatch.setattr(parallel, "start_method", lambda: "spawn")
    assert write(packed, tmp_path / "two", 2, formats=["pixel-sum", "json-hash"]) == one
    assert one["s.sum.txt"].decode().startswith("s-0.png ")


def test_a_worker_error_is_the_one_process_error_and_leaves_no_file(tmp_path):
    """libgdx refuses a page name with ':' (raised in the worker rendering it): the same ValueError with
    and without workers, and the folder keeps nothing, not even a temp."""
    result = pack(sprites(), max_size=64)
    errors = []
    for workers in (1, 2):
        folder = tmp_path / f"w{workers}"
        folder.mkdir()
        with pytest.raises(ValueError) as exc:
            write_atlases(result, folder / "a:b.png", ["json-hash", "libgdx"], workers=workers)
        errors.append(str(exc.value))
        assert list(folder.iterdir()) == []
    assert errors[0] == errors[1] and "libGDX atlas cannot name the page image" in errors[0]


def test_a_page_that_cannot_be_encoded_fails_the_same_and_keeps_the_old_set(packed, tmp_path):
    """A page PNG cannot encode (CMYK) in a worker: the same OSError as in one process, and the set
    written before (force) is left byte for byte."""
    old = write(packed, tmp_path / "f", 1)
    bad = PackResult(pages=[*packed.pages[:4], Page(Image.new("CMYK", (64, 64)), packed.pages[4].frames)])
    messages = []
    for workers in (1, 2):
        with pytest.raises(OSError) as exc:
            write_atlases(bad, tmp_path / "f" / "s.png", FORMATS, workers=workers, force=True)
        messages.append(str(exc.value))
        assert written(tmp_path / "f") == old
    assert messages[0] == messages[1] and "CMYK" in messages[0]


def test_a_worker_that_dies_is_one_oserror_and_nothing_is_written(packed, tmp_path, monkeypatch):
    import scarlet_moon.exporters.registry as registry

    if parallel.start_method() != "fork":
        pytest.skip("the dying format is defined in this test module: forked workers only")
    base = registry.available_formats
    monkeypatch.setattr(registry, "available_formats", lambda: {**base(), "exits": Exits()})
    (tmp_path / "f").mkdir()
    with pytest.raises(OSError, match="worker process .* stopped.*nothing was written"):
        write_atlases(packed, tmp_path / "f" / "s.png", ["json-hash", "exits"], workers=2)
    assert list((tmp_path / "f").iterdir()) == []


def test_workers_is_checked_and_chosen_from_the_sheet(packed, tmp_path):
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=f"workers={bad!r} must be a whole number >= 1"):
            write_atlases(packed, tmp_path / "s.png", workers=bad)
    assert list(tmp_path.iterdir()) == []
    assert auto_workers(AUTO_MIN_PIXELS - 1, 10, cpus=16) == 1  # a small sheet: one process
    assert auto_workers(AUTO_MIN_PIXELS * 4, 1, cpus=16) == 1  # one file: nothing to share out
    assert auto_workers(AUTO_MIN_PIXELS * 4, 10, cpus=2) == 1  # 2 cores: measured no faster
    assert auto_workers(AUTO_MIN_PIXELS * 4, 3, cpus=16) == 3
    assert auto_workers(AUTO_MIN_PIXELS * 4, 20, cpus=16) == 8
    assert auto_workers(AUTO_MIN_PIXELS * 4, 20) == (1 if (os.cpu_count() or 1) < 4 else min(os.cpu_count(), 8))


def test_sm_sheet_jobs(tmp_path):
    """--jobs 2 writes the same files as --jobs 1; --jobs 0 is one line, exit code 2, nothing written."""
    src = tmp_path / "in"
    src.mkdir()
    for s in sprites(30):
        s.image.save(src / f"{s.name}.png")
    runner = CliRunner()
    for jobs in ("1", "2"):
        (tmp_path / jobs).mkdir()
        res = runner.invoke(
            sm,
            [
                "sheet",
                "--from",
                str(src),
                "--out",
                str(tmp_path / jobs / "s.png"),
                "--max-size",
                "64",
                "--format",
                "json-hash,godot3,libgdx",
                "--jobs",
                jobs,
            ],
        )
        assert res.exit_code == 0, res.output
    assert written(tmp_path / "1") == written(tmp_path / "2") and len(written(tmp_path / "1")) > 8
    res = runner.invoke(sm, ["sheet", "--from", str(src), "--out", str(tmp_path / "s.png"), "--jobs", "0"])
    assert res.exit_code == 2 and not (tmp_path / "s.png").exists()
    assert res.stderr.strip().splitlines() == [
        "error: Invalid value for '--jobs': 0 is not in the range x>=1 (see 'sm sheet --help')"
    ]
