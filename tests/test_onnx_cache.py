"""backends.onnx_cache: onnxruntime's optimised graph kept between processes; it must give the same
sprites, never fail a session that would open without it, and heal a broken entry."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")

from scarlet_moon.backends import onnx_cache  # noqa: E402
from scarlet_moon.backends.onnx_session import cpu_session  # noqa: E402
from scarlet_moon.errors import BadInput  # noqa: E402
from scarlet_moon.models.card import BUNDLED_MODEL  # noqa: E402

BUNDLED_ONNX = BUNDLED_MODEL.with_suffix(".onnx")


@pytest.fixture
def model(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("SCARLET_MOON_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SM_ORT_CACHE", raising=False)
    return Path(shutil.copy(BUNDLED_ONNX, tmp_path / "m.onnx"))


def run(sess) -> np.ndarray:
    rng = np.random.default_rng(0)
    feeds = {
        "x": rng.standard_normal((3, 4, 16, 16), dtype=np.float32),
        "t": np.array([0.9, 0.5, 0.1], np.float32),
        "y": np.array([0, 5, 6], np.int64),
    }
    return sess.run(None, feeds)[0]


def entries(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "ort").glob("*"))


def opened_paths(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = ort.InferenceSession

    def spy(path, *a, **kw):
        seen.append(str(path))
        return real(path, *a, **kw)

    monkeypatch.setattr(ort, "InferenceSession", spy)
    return seen


def test_second_session_opens_the_cached_graph_and_gives_the_same_numbers(model: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SM_ORT_CACHE", "0")
    plain = run(cpu_session(ort, model))
    assert entries(tmp_path) == []
    monkeypatch.delenv("SM_ORT_CACHE")
    first = run(cpu_session(ort, model))
    [entry] = entries(tmp_path)  # one entry, no temporary file left
    assert entry.name.endswith(".opt.onnx")
    seen = opened_paths(monkeypatch)
    again = run(cpu_session(ort, model))
    assert seen == [str(entry)]
    assert np.array_equal(plain, first) and np.array_equal(plain, again)


def test_a_changed_model_file_gets_its_own_entry(model: Path, tmp_path: Path):
    cpu_session(ort, model)
    shutil.copy(BUNDLED_ONNX, tmp_path / "other.onnx")
    cpu_session(ort, tmp_path / "other.onnx")
    assert len(entries(tmp_path)) == 2


@pytest.mark.parametrize("junk", [b"", b"not a model", None])
def test_a_broken_entry_is_made_again(model: Path, tmp_path: Path, junk: bytes | None):
    expected = run(cpu_session(ort, model))
    [entry] = entries(tmp_path)
    data = entry.read_bytes()
    entry.write_bytes(junk if junk is not None else data[: len(data) // 2])
    assert np.array_equal(run(cpu_session(ort, model)), expected)
    assert [p.name for p in entries(tmp_path)] == [entry.name]  # made again, where it was
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    assert np.array_equal(run(ort.InferenceSession(str(entry), so, providers=["CPUExecutionProvider"])), expected)


def test_an_unusable_cache_folder_costs_nothing_but_time(model: Path, tmp_path: Path, monkeypatch):
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("SCARLET_MOON_CACHE", str(tmp_path / "afile" / "cache"))  # under a file: no mkdir
    expected = run(cpu_session(ort, model))
    monkeypatch.setenv("SCARLET_MOON_CACHE", str(tmp_path / "c2"))
    assert np.array_equal(run(cpu_session(ort, model)), expected)


def test_a_bad_model_is_the_same_one_line_error_with_the_cache(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SCARLET_MOON_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07junk" * 10)
    with pytest.raises(BadInput, match="bad.onnx.*is not a loadable ONNX model"):
        cpu_session(ort, bad)
    assert entries(tmp_path) == [] or all(not p.name.endswith(".tmp") for p in entries(tmp_path))


def test_only_the_newest_entries_are_kept(tmp_path: Path):
    folder = tmp_path / "ort"
    folder.mkdir()
    for i in range(onnx_cache.KEEP + 3):
        p = folder / f"{i:02d}{onnx_cache.SUFFIX}"
        p.write_bytes(b"x")
        os.utime(p, ns=(i * 10**9, i * 10**9))
    onnx_cache.prune(folder)
    assert sorted(p.name[:2] for p in folder.iterdir()) == [f"{i:02d}" for i in range(3, onnx_cache.KEEP + 3)]
