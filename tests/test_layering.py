"""Dependencies point one way: scarlet_moon.cli -> the library -> scarlet_moon.exporters; light paths import no torch;
bench never imports the CLI. (.ci/run checks the same contracts with import-linter: pyproject.toml.)"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_exporters_import_neither_torch_nor_scarlet_moon_nor_cli_libs():
    mods = modules_after("import scarlet_moon.exporters")
    assert "torch" not in mods
    ours = {m for m in mods if m.startswith("scarlet_moon.")}
    assert ours and all(
        m.startswith("scarlet_moon.exporters") or m in ("scarlet_moon.errors", "scarlet_moon.version") for m in ours
    ), sorted(ours)
    assert "click" not in mods and "rich" not in mods


def test_scarlet_moon_imports_neither_click_nor_rich():
    mods = modules_after(
        "import scarlet_moon, scarlet_moon.training.loop, scarlet_moon.training.runs, scarlet_moon.data.sprites, "
        "scarlet_moon.diffusion.samplers, scarlet_moon.data.pixels, scarlet_moon.models.checkpoint"
    )
    assert "click" not in mods and "rich" not in mods
    assert "torch" in mods  # sanity: the training modules really were imported


def test_sm_help_does_not_import_torch():
    mods = modules_after(
        "from click.testing import CliRunner\nfrom scarlet_moon.cli.main import sm\n"
        "r = CliRunner().invoke(sm, ['--help'])\nassert r.exit_code == 0, r.output"
    )
    assert "torch" not in mods and "mlflow" not in mods


def test_only_cli_imports_click_or_rich_in_source():
    offenders = []
    for path in (ROOT / "scarlet_moon").rglob("*.py"):
        if "cli" not in path.relative_to(ROOT).parts[:2]:
            text = path.read_text()
            if any(s in text for s in ("import click", "from click", "import rich", "from rich")):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_sm_help_lists_commands():
    out = subprocess.run(
        [sys.executable, "-m", "scarlet_moon.cli.main", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0
    for command in (
        "train",
        "data",
        "sample",
        "labels",
        "info",
        "sheet",
        "eval",
        "export-onnx",
        "doctor",
        "plugin",
        "distill",
        "studio",
        "tileset",
    ):
        assert f"  {command} " in out.stdout, command


# ------------------------------------------------------------------ the import graph, read from the sources
PACKAGES = ("scarlet_moon",)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def internal_imports(path: Path, modules: set[str]) -> set[str]:
    """The package modules `path` imports anywhere (function bodies too), `if TYPE_CHECKING:` blocks left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:  # `import a.b.c` of a symbol path: its module
                name = name.rpartition(".")[0]
            if name and name != me:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    modules = {module_name(p) for p in paths}
    return {module_name(p): internal_imports(p, modules) for p in paths}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 40 and "scarlet_moon.models.card" in graph  # sanity: the walk found the package
    assert cycles(graph) == []


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_dependencies_point_one_way():
    """cli -> the library -> exporters: nothing outside scarlet_moon.cli imports it; scarlet_moon.exporters imports
    nothing else of scarlet_moon; bench never imports the CLI."""
    graph = import_graph()
    cli, exp = "scarlet_moon.cli", "scarlet_moon.exporters"
    bad = [
        (a, b)
        for a, deps in graph.items()
        for b in deps
        if (not a.startswith(cli) and b.startswith(cli)) or (a.startswith(exp) and not b.startswith(exp))
    ]
    assert bad == []
    bench = [
        f"{p.name}: {line.strip()}"
        for p in sorted((ROOT / "bench").rglob("*.py"))
        for line in p.read_text(encoding="utf-8").splitlines()
        if re.match(r"\s*(from|import)\s+scarlet_moon\.cli\b|\s*(from|import)\s+cli\b", line)
    ]
    assert bench == []


# ------------------------------------------------------------------ library errors speak of parameters, not flags
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def message_texts(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string piece of a module that is not a docstring: error messages, log
    lines, pieces of either kept in variables, f-string parts."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return sorted(
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
    )


def test_no_library_message_names_a_cli_flag():
    """Library errors name the parameter (errors.arg); cli maps it to the flag."""
    offenders = [
        f"{p.relative_to(ROOT)}:{line}: {text.strip()[:70]!r}"
        for p in sorted((ROOT / "scarlet_moon").rglob("*.py"))
        if "cli" not in p.relative_to(ROOT).parts[:2]
        for line, text in message_texts(p)
        if FLAG.search(text)
    ]
    assert offenders == []


def test_flag_finder_sees_flags_in_f_strings_and_skips_docstrings(tmp_path: Path):
    src = tmp_path / "m.py"
    src.write_text(
        '"""Run with --help."""\n\ndef f(n):\n    """--count n."""\n'
        '    raise BadInput(f"--count {n}: must be at least 1")\n'
    )
    assert [t for _, t in message_texts(src) if FLAG.search(t)] == ["--count "]


def test_cli_shows_a_library_parameter_as_its_flag(tiny_model: Path, tmp_path: Path):
    """The library says `seed -1`, `sm sample` says `--seed -1`; the API user sees the parameter."""
    from click.testing import CliRunner

    import scarlet_moon
    from scarlet_moon.cli.main import sm
    from scarlet_moon.errors import BadInput

    res = CliRunner().invoke(sm, ["sample", "--model", str(tiny_model), "--seed", "-1", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and res.stderr.strip() == "error: --seed -1: must be an integer >= 0"
    try:
        scarlet_moon.generate(tiny_model, seed=-1)
    except BadInput as exc:
        assert str(exc) == "seed -1: must be an integer >= 0" and exc.params == ["seed"]
    else:
        raise AssertionError("seed -1 was accepted")
