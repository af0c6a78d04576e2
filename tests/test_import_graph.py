"""No module of ukmp imports a module that imports it back, directly or through others.

Every import counts, also those inside functions: a loop hidden in a function body still ties two
modules together and breaks as soon as someone moves that import to the top of its file.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules() -> dict[str, Path]:
    out = {}
    for file in SRC.rglob("*.py"):
        parts = file.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = file
    return out


def _imports(file: Path, known: set[str]) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in known}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return cycles


def test_the_finder_sees_a_loop() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_no_module_imports_one_that_imports_it_back() -> None:
    modules = _modules()
    assert "ukmp.pruning" in modules and "ukmp.methods.registry" in modules
    graph = {name: _imports(file, set(modules)) - {name} for name, file in modules.items()}
    loops = _cycles(graph)
    assert not loops, "import loops: " + "; ".join(" -> ".join(loop) for loop in loops)


#: the modules that hold one pruning method each (its scores, options, scorer); the registry lists them
METHOD_MODULES = {
    f"ukmp.methods.{name}"
    for name in ("ukmp", "ukmi", "llm_pruner", "flap", "wanda_sp", "ecoflap_sp", "upop", "magnitude", "random")
}


def test_the_prune_path_asks_the_scorer_and_imports_no_method() -> None:
    modules = _modules()
    assert METHOD_MODULES <= set(modules)
    compare = sorted(name for name in modules if name.startswith("ukmp.compare."))
    assert "ukmp.compare.draw" in compare
    for name in ("ukmp.pruning", *compare, "ukmp.commands.shared_options", "ukmp.removal_cost"):
        named = _imports(modules[name], set(modules)) & METHOD_MODULES
        assert not named, f"{name} imports {sorted(named)}"
