"""Reliability and safety: every row of docs/errors.md run as documented, no unsafe loaders in
the package sources, every writer atomic, atlas names escaped.

`pytest -k reliability` runs these, the kill/fuzz tests (test_reliability_*.py) and the training
kill-and-resume tests of test_train.py (marked `reliability`).
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT
from reliability_workspace import build_workspace

from scarlet_moon.cli.main import sm

DOC = ROOT / "docs" / "errors.md"
PACKAGES = ("scarlet_moon",)


# ------------------------------------------------------------------ docs/errors.md, row by row
@dataclass(frozen=True)
class Row:
    command: str
    bad_input: str
    example: str
    message: str
    exit_code: int

    @property
    def id(self) -> str:
        return f"{self.command}: {self.bad_input}"[:80]


def _code(cell: str) -> str | None:
    """The text of a cell that is one code span (`x` or `` x ``), else None."""
    m = re.fullmatch(r"(`+)(.*?)\1", cell.strip())
    if not m:
        return None
    text = m.group(2)
    return text[1:-1] if len(m.group(1)) > 1 and text.startswith(" ") and text.endswith(" ") else text


def parse_rows(text: str) -> list[Row]:
    """The rows of the bad-input table: those whose example cell is a code span starting with `sm `."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("| sm "):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert len(cells) == 5, f"docs/errors.md row must have 5 cells: {line}"
        example, message = _code(cells[2]), _code(cells[3])
        assert example and example.startswith("sm ") and message, f"bad row in docs/errors.md: {line}"
        rows.append(Row(cells[0], cells[1], example, message, int(cells[4])))
    return rows


def matches(documented: str, line: str) -> bool:
    """The printed line contains the documented message; '…' stands for any text."""
    pattern = ".*".join(re.escape(part) for part in documented.split("…"))
    return re.search(pattern, line) is not None


ROWS = parse_rows(DOC.read_text(encoding="utf-8"))


def test_reliability_table_parses_and_covers_the_brief():
    assert len(ROWS) >= 30
    text = " ".join(r.bad_input + " " + r.example for r in ROWS)
    for needed in (
        "unknown label",
        "--count 0",
        "negative",
        "not a number",
        "--steps 0",
        "missing",
        "truncated",
        "foreign",
        "pickle",
        "ONNX",
        "--resume",
        "mixed",
        "not an image",
        "empty label folder",
        "one-hot",
        "does not exist",
        "cannot be written",
        "no colours",
        "../../x",
    ):
        assert needed in text, needed
    assert {r.exit_code for r in ROWS} == {0, 2}


def test_matches_needs_the_whole_documented_text():
    assert matches("error: a … c", "error: a b b c")
    assert not matches("error: a … c", "error: a b b d")
    assert not matches("error: unknown label 'x'", "error: unknown label 'y'")


def _tree(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_model: Path, tiny_set: Path) -> Path:
    return build_workspace(tmp_path_factory.mktemp("errors-doc") / "ws", tiny_model.parent, tiny_set)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_reliability_documented_error(row: Row, workspace: Path, tmp_path: Path, monkeypatch):
    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws, symlinks=True)
    monkeypatch.chdir(ws)
    if " ro/" in row.example and os.access(ws / "ro", os.W_OK):  # root writes into a mode-555 folder
        if os.access("/proc/sys", os.W_OK):
            pytest.skip("running as root and /proc/sys is writable: no folder here refuses writes")
        shutil.rmtree(ws / "ro")
        (ws / "ro").symlink_to("/proc/sys")  # a folder that refuses writes even to root
    before = _tree(ws)
    res = CliRunner().invoke(sm, shlex.split(row.example)[1:])
    shown = f"stdout={res.stdout!r} stderr={res.stderr!r}"
    assert res.exception is None or isinstance(res.exception, SystemExit), f"{res.exception!r} {shown}"
    assert res.exit_code == row.exit_code, shown
    assert "Traceback" not in res.stdout + res.stderr
    if row.exit_code == 0:  # the documented line is what stdout prints: a file made safe, inside --out
        lines = res.stdout.strip().splitlines()
        assert len(lines) == 1 and matches(row.message, lines[0]), shown
        written = (ws / lines[0]).resolve()
        assert written.is_file() and (ws / "out").resolve() in written.parents
        assert _tree(ws) - before == {"out", Path(lines[0]).as_posix()}
        return
    assert res.stdout == "", shown
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), shown
    assert matches(row.message, lines[0]), f"documented {row.message!r}, printed {lines[0]!r}"
    assert _tree(ws) == before, "a failed command must not leave files behind"


def test_reliability_interruption_table_names_real_tests():
    """The second table of docs/errors.md points at tests: they must exist."""
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", DOC.read_text(encoding="utf-8"))
    assert len(named) >= 5
    for path, name in named:
        source = (ROOT / path).read_text(encoding="utf-8")
        assert re.search(rf"^def {name}\(", source, re.M), f"{path}::{name} is named in docs/errors.md"


def test_reliability_errors_are_escaped_not_markup(tmp_path: Path, monkeypatch):
    """A path with rich markup in it ([/x] used to crash the error printer with a traceback)."""
    monkeypatch.chdir(tmp_path)
    for name in ("[/x].safetensors", "[bold]y.safetensors"):
        res = CliRunner().invoke(sm, ["labels", "--model", name])
        assert res.exit_code == 2 and (res.exception is None or isinstance(res.exception, SystemExit))
        assert res.stderr.strip() == f"error: checkpoint {name!r} does not exist or is not a file"


# ------------------------------------------------------------------ unsafe loaders in the sources
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal", "joblib"}


def unsafe_calls(source: str, filename: str = "<src>") -> list[str]:
    """pickle-family imports, torch.load without weights_only=True, allow_pickle=True, yaml.load,
    and calls of the builtins eval/exec (model.eval() is a method, not the builtin)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where} import {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom):
            mod = (node.module or "").split(".")[0]
            if mod in UNSAFE_MODULES or (mod == "torch" and any(a.name == "load" for a in node.names)):
                found.append(f"{where} from {node.module} import ...")
        elif isinstance(node, ast.Call):
            found += [f"{where} {msg}" for msg in _unsafe_call(node)]
    return found


def _unsafe_call(call: ast.Call) -> list[str]:
    f = call.func
    kw = {k.arg: k.value for k in call.keywords}
    out = []
    if isinstance(f, ast.Name) and f.id in ("eval", "exec"):
        out.append(f"{f.id}(")
    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
        owner, attr = f.value.id, f.attr
        if owner == "torch" and attr == "load":
            wo = kw.get("weights_only")
            if not (isinstance(wo, ast.Constant) and wo.value is True):
                out.append("torch.load( without weights_only=True")
        if owner == "yaml" and attr in ("load", "unsafe_load", "full_load"):
            out.append(f"yaml.{attr}(")
        if owner in UNSAFE_MODULES:
            out.append(f"{owner}.{attr}(")
    ap = kw.get("allow_pickle")
    if isinstance(ap, ast.Constant) and ap.value is True:
        out.append("allow_pickle=True")
    return out


def package_sources() -> list[Path]:
    files = sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))
    assert len(files) > 20
    return files


def test_reliability_checker_catches_what_it_should():
    bad = (
        "import pickle\nfrom dill import loads\nimport torch\ntorch.load('m.pt')\n"
        "torch.load('m.pt', weights_only=False)\neval('1')\nexec('x = 1')\nnp.load(p, allow_pickle=True)\n"
        "from torch import load\nyaml.load(s)\n"
    )
    assert len(unsafe_calls(bad)) == 9, unsafe_calls(bad)
    good = (
        "model.eval()\nnet.eval()\nx = 'eval(1) exec( pickle'\n# torch.load(p)\n"
        "torch.load(p, weights_only=True)\nnp.load(p, allow_pickle=False)\nsm.exec_module(m)\n"
    )
    assert unsafe_calls(good) == []


def test_reliability_no_pickle_torch_load_eval_or_exec_in_package_sources():
    found = [
        hit
        for path in package_sources()
        for hit in unsafe_calls(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert found == []


# ------------------------------------------------------------------ every writer is atomic
ATOMIC_MODULES = {"scarlet_moon/exporters/atomic.py"}
OWNED_WRITES = {
    "shutil": {"copy", "copy2", "copyfile", "copyfileobj", "copytree", "move"},
    "json": {"dump"},
    "os": {"rename", "replace"},
    "np": {"save", "savez", "savez_compressed", "savetxt"},
    "numpy": {"save", "savez", "savez_compressed", "savetxt"},
    "torch": {"save"},
}
ANY_WRITES = {"write_text", "write_bytes", "tofile", "to_csv"}
# calls named like writers that write none of our files: W&B uploads a file that is already written
NOT_WRITES = {"self.run.save"}


def direct_writes(source: str, filename: str = "<src>") -> list[str]:
    """Calls that create or overwrite a file other than through a temp name + rename:
    open()/Path.open() for writing, write_text/write_bytes, np.save & co, json.dump, shutil copies,
    os.rename/replace, and .save(target) (PIL, torch) unless the target is an in-memory buffer."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        f, where = node.func, f"{filename}:{node.lineno}"
        if isinstance(f, ast.Name):
            if f.id == "open" and _write_mode(node):
                found.append(f"{where} open(..., {_write_mode(node)!r})")
            continue
        if not isinstance(f, ast.Attribute) or ast.unparse(f) in NOT_WRITES:
            continue
        owner = f.value.id if isinstance(f.value, ast.Name) else None
        if f.attr == "open" and _write_mode(node):
            found.append(f"{where} .open(..., {_write_mode(node)!r})")
        elif f.attr in ANY_WRITES or f.attr in OWNED_WRITES.get(owner, ()):
            if not (f.attr.startswith("save") and _to_buffer(node, 0)):
                found.append(f"{where} {ast.unparse(f)}(")
        elif f.attr == "save" and owner not in OWNED_WRITES and not _to_buffer(node, 0):
            found.append(f"{where} {ast.unparse(f)}( to a path")
    return found


def _write_mode(call: ast.Call) -> str:
    pos = 0 if isinstance(call.func, ast.Attribute) else 1  # Path.open(mode) / open(path, mode)
    args = list(call.args[pos : pos + 1]) + [k.value for k in call.keywords if k.arg == "mode"]
    for a in args:
        if isinstance(a, ast.Constant) and isinstance(a.value, str) and set(a.value) & set("wax+"):
            return a.value
    return ""


def _to_buffer(call: ast.Call, index: int) -> bool:
    """The target is an in-memory buffer (a name like buf, or io.BytesIO())."""
    target = call.args[index] if len(call.args) > index else None
    if isinstance(target, ast.Name):
        return target.id in ("buf", "buffer", "bio")
    return isinstance(target, ast.Call) and ast.unparse(target.func).endswith("BytesIO")


def test_reliability_write_checker_catches_what_it_should():
    bad = (
        "open(p, 'w')\nPath(p).open('wb')\np.write_text('x')\np.write_bytes(b'')\nimg.save(path)\n"
        "np.save(path, a)\njson.dump(d, f)\nshutil.copy(a, b)\nos.replace(a, b)\ntorch.save(sd, p)\n"
        "open(p, mode='a')\n"
    )
    assert len(direct_writes(bad)) == 11, direct_writes(bad)
    good = (
        "open(p)\np.open('rb')\nimg.save(buf, format='PNG')\nnp.save(io.BytesIO(), a)\nx = a.copy()\n"
        "name.replace('-', '_')\nwrite_file(p, data)\nos.open(d, os.O_RDONLY)\nself.run.save(p)\n"
    )
    assert direct_writes(good) == []


def test_reliability_every_writer_goes_through_a_temp_name_and_rename():
    found = [
        hit
        for path in package_sources()
        if path.relative_to(ROOT).as_posix() not in ATOMIC_MODULES
        for hit in direct_writes(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert found == [], "write through scarlet_moon.exporters.atomic instead"


def test_reliability_atomic_write_leaves_old_file_on_failure(tmp_path: Path, monkeypatch):
    from scarlet_moon.exporters.atomic import write_file

    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_file(target, b"new")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


# ------------------------------------------------------------------ atlas names are escaped
NASTY = [
    'say "hi"',
    "two\nlines",
    "[bracket] {brace}",
    "back\\slash",
    "colon: x",
    "tab\there",
    "../../x",
    "\u00e9t\u00e9 \u2603",
    "]]\n[resource]\nx = 1",
]


def _nasty_result():
    from PIL import Image

    from scarlet_moon.exporters import Sprite, pack

    sprites = [
        Sprite(name=f"s{i}", image=Image.new("RGBA", (4, 4), (i * 20, 9, 9, 255)), label=label, meta={"note": label})
        for i, label in enumerate(NASTY)
    ]
    return pack(sprites, padding=1, dedupe=False)


def test_reliability_json_atlases_keep_nasty_labels_intact(tmp_path: Path):
    from scarlet_moon.exporters import write_atlases

    write_atlases(_nasty_result(), tmp_path / "n.png", ["json-hash", "json-array", "aseprite"])
    doc = json.loads((tmp_path / "n.json").read_text(encoding="utf-8"))
    assert set(doc["animations"]) == set(NASTY)
    assert sorted(f["data"]["label"] for f in doc["frames"].values()) == sorted(NASTY)
    tags = json.loads((tmp_path / "n.aseprite.json").read_text(encoding="utf-8"))["meta"]["frameTags"]
    assert sorted(t["name"] for t in tags) == sorted(NASTY)
    assert len(json.loads((tmp_path / "n.array.json").read_text(encoding="utf-8"))["frames"]) == len(NASTY)


def _tres_strings(text: str) -> list[str]:
    """Every "..." literal of a .tres, decoded the way Godot's variant parser reads them."""
    return [json.loads(s) for s in re.findall(r'"(?:[^"\\\n]|\\.)*"', text)]


def test_reliability_godot_tres_keeps_nasty_labels_in_strings(tmp_path: Path):
    from scarlet_moon.exporters import write_atlases

    write_atlases(_nasty_result(), tmp_path / "n.png", ["godot3", "godot4"])
    for name in ("n.tres", "n.godot4.tres"):
        text = (tmp_path / name).read_text(encoding="utf-8")
        strings = _tres_strings(text)
        assert all(label in strings for label in NASTY), name
        # outside string literals the structure is intact: one [resource] section, brackets balanced
        bare = re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', text)
        assert bare.count("[resource]") == 1 and bare.count("[") == bare.count("]"), name
        assert bare.count("{") == bare.count("}") and bare.count('"": ""') == len(NASTY), name


def test_reliability_libgdx_atlas_region_names_stay_one_line(tmp_path: Path):
    from scarlet_moon.exporters import write_atlases
    from scarlet_moon.exporters.fmt_libgdx import atlas_name

    write_atlases(_nasty_result(), tmp_path / "n.png", ["libgdx"])
    lines = (tmp_path / "n.atlas").read_text(encoding="utf-8").splitlines()
    assert lines[5] == "pma: false"  # the page header ends here; regions follow
    regions = [ln for ln in lines[6:] if ln and not ln.startswith("  ")]
    assert len(regions) == len(NASTY) == len(set(regions))
    assert all(":" not in r and r == r.strip() and "\t" not in r for r in regions)
    assert set(regions) >= {atlas_name(n) for n in NASTY if ":" not in n and "\n" not in n and "\t" not in n}
