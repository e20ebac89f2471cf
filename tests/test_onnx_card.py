"""An exported .onnx whose card and graph disagree (sprite size, channels, label count either way, a
fixed batch) is one line naming the file at load, exit 2: never onnxruntime's traceback or raw log
line at the first run, never silently wrong guidance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner

from scarlet_moon.cli.main import sm
from scarlet_moon.models.card import BUNDLED_MODEL

onnx = pytest.importorskip("onnx")
SOURCE = BUNDLED_MODEL.with_suffix(".onnx")


def fixed_batch(m: Any, card: dict) -> None:
    for vi in list(m.graph.input) + list(m.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if len(dims):
            dims[0].ClearField("dim_param")
            dims[0].dim_value = 1


CASES: dict[str, tuple[Callable[[Any, dict], None], str]] = {
    "size": (lambda m, c: c.update(image_size=[32, 32]), "its card says [batch, 4, 32, 32]"),
    "channels": (lambda m, c: c.update(channels=3), "its card says [batch, 3, 16, 16]"),
    "more labels": (lambda m, c: c.update(label_names=c["label_names"] + ["x", "y"]), "its card names 8 labels"),
    "fewer labels": (lambda m, c: c.update(label_names=c["label_names"][:2]), "its card names 2 labels"),
    "fixed batch": (fixed_batch, "has a fixed batch of 1"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_card_that_disagrees_with_its_graph_is_refused_at_load(case: str, tmp_path: Path):
    edit, message = CASES[case]
    m = onnx.load(str(SOURCE))
    props = {p.key: p for p in m.metadata_props}
    card = json.loads(props["scarlet_moon.card"].value)
    edit(m, card)
    props["scarlet_moon.card"].value = json.dumps(card)
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    res = CliRunner().invoke(sm, ["sample", "--model", str(path), "--count", "2", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and message in res.stderr and str(path) in res.stderr, res.output
    assert len(res.stderr.strip().splitlines()) == 1 and "ONNXRuntimeError" not in res.output
    assert not (tmp_path / "o").exists()


def test_the_bundled_export_passes_its_own_check(tmp_path: Path):
    res = CliRunner().invoke(sm, ["sample", "--model", str(SOURCE), "--count", "2", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0 and len(list((tmp_path / "o").glob("*.png"))) == 2
