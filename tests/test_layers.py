"""The import layering of the code: rules, then the engine, then teachers, output and sources
(side by side, none importing another), then the stages, then the build and the CLI. A module
imports only its own layer and the layers below it (lazy imports inside functions included),
so the engine never knows a particular stage, teacher or output format; and no module imports
itself through others (a cycle hidden by imports inside functions is still a cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# layer -> the layers its modules may import
ALLOWED = {
    "rules": {"rules"},
    "engine": {"rules", "engine"},
    "teachers": {"rules", "engine", "teachers"},
    "output": {"rules", "engine", "output"},
    "sources": {"rules", "engine", "sources"},
    "stages": {"rules", "engine", "teachers", "output", "sources", "stages"},
    "top": {"rules", "engine", "teachers", "output", "sources", "stages", "top"},
}


def layer_of(module: str) -> str | None:
    """The layer of a dotted module name of this project (None: not ours)."""
    parts = module.split(".")
    if parts[0] == "pipeline":
        sub = parts[1] if len(parts) > 1 else ""
        return sub if sub in ("rules", "engine", "teachers", "output") else "top"
    if parts[0] == "stages":
        return "sources" if len(parts) > 1 and parts[1] in ("sources", "benchmarks") else "stages"
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(code: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """Every project module that `module`'s code imports, anywhere in it, with its line."""
    package = module if is_package else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from pipeline.engine import storage` imports the module pipeline.engine.storage
            out += [(node.lineno, f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base)
                    for a in node.names]
    return [(line, m) for line, m in out if layer_of(m)]


def _is_module(name: str) -> bool:
    path = ROOT / Path(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def test_each_module_imports_only_its_own_layer_and_those_below():
    files = [*(ROOT / "pipeline").rglob("*.py"), *(ROOT / "stages").rglob("*.py")]
    assert len(files) > 60
    wrong, seen = [], set()
    for path in files:
        name = module_name(path)
        mine = layer_of(name)
        for line, target in imports(path.read_text(encoding="utf-8"), name,
                                    path.name == "__init__.py"):
            seen.add((mine, layer_of(target)))
            if layer_of(target) not in ALLOWED[mine]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({mine}) imports {target} "
                             f"({layer_of(target)})")
    assert not wrong, "\n".join(wrong)
    # the walk saw imports across every boundary the layering allows
    assert {("top", "stages"), ("stages", "teachers"), ("teachers", "engine"),
            ("output", "rules"), ("sources", "engine")} <= seen


def test_the_layer_check_sees_a_wrong_import():
    """The check itself: an engine module that imports a stage in a function, or the output
    that imports a teacher module by `from package import module`, is caught."""
    code = ("from pipeline.teachers import cache\n\n\ndef f():\n"
            "    from stages.split import Split\n    return Split\n")
    found = imports(code, "pipeline.engine.probe")
    assert found == [(1, "pipeline.teachers.cache"), (5, "stages.split")]
    assert {layer_of(t) for _, t in found} & ALLOWED["engine"] == set()
    assert imports("from ..rules import verdict\n", "pipeline.output.probe") == [
        (1, "pipeline.rules.verdict")]


def import_graph() -> dict[str, set[str]]:
    """Each module of the project -> the project modules it imports, anywhere in its code."""
    files = [*(ROOT / "pipeline").rglob("*.py"), *(ROOT / "stages").rglob("*.py")]
    return {module_name(p): {t for _, t in imports(p.read_text(encoding="utf-8"), module_name(p),
                                                   p.name == "__init__.py")}
            for p in files}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected sets of more than one module (or of one importing itself), by
    Tarjan's algorithm: each is an import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph.get(v, ()):
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_itself_through_others():
    graph = import_graph()
    assert len(graph) > 60
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle_made_of_lazy_imports():
    """A package that imports its base module, whose function imports the package back (the
    shape the teacher layer had), is one cycle; a plain chain is none."""
    graph = {"p": {"p.base"}, "p.base": {"q"}, "q": {"p"}, "r": {"p"}}
    assert cycles(graph) == [["p", "p.base", "q"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    code = "def f():\n    from pipeline.teachers.backends import registry\n"
    assert imports(code, "pipeline.teachers.backends.base") == [
        (2, "pipeline.teachers.backends")]
