"""The house plan, enforced: no import circle in the package, and nothing reachable from
`edgeliquid.runtime` imports torch, onnx or ncps.

The walk reads every module's imports with `ast`, the ones inside functions included (a lazy
import still ties two modules: `sinks` importing `mavlink` inside a factory while `mavlink`
imports `sinks` was one of the circles this test now forbids).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edgeliquid"
HEAVY = {"torch", "onnx", "onnxscript", "ncps", "matplotlib", "ray", "optuna"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """Every module `name` imports: edgeliquid modules by full name, others by top package."""
    tree = ast.parse(MODULES[name].read_text())
    is_package = MODULES[name].name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in MODULES else base)
    return {m if m in MODULES else m.split(".")[0] for m in found}


GRAPH = {name: {m for m in imports_of(name) if m in MODULES and m != name} for name in MODULES}


def find_cycle() -> list[str] | None:
    done: set[str] = set()
    for start in sorted(GRAPH):
        stack, path, on_path = [(start, iter(sorted(GRAPH[start])))], [start], {start}
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
            elif child in on_path:
                return [*path[path.index(child) :], child]
            elif child not in done:
                stack.append((child, iter(sorted(GRAPH[child]))))
                path.append(child)
                on_path.add(child)
    return None


def reachable(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo += GRAPH.get(node, ())
    return seen


def test_the_walk_sees_the_package():
    assert {"edgeliquid.runtime.daemon", "edgeliquid.contract", "edgeliquid.cli.app"} <= set(GRAPH)
    assert "edgeliquid.runtime.sinks" in GRAPH["edgeliquid.runtime.daemon"]
    assert "torch" in imports_of("edgeliquid.model.policy")


def test_no_import_circle():
    assert find_cycle() is None, " -> ".join(find_cycle() or [])


def test_the_runtime_reaches_no_torch_or_onnx():
    runtime = [m for m in MODULES if m.startswith("edgeliquid.runtime")]
    for name in runtime:
        for module in reachable(name):
            heavy = imports_of(module) & HEAVY
            assert not heavy, f"{name} reaches {module}, which imports {sorted(heavy)}"


def test_a_planted_circle_is_found(monkeypatch):
    """The checker itself can fail: add the edge sinks -> mavlink back and it reports it."""
    graph = {k: set(v) for k, v in GRAPH.items()}
    graph["edgeliquid.runtime.sinks"].add("edgeliquid.runtime.mavlink")
    monkeypatch.setitem(globals(), "GRAPH", graph)
    cycle = find_cycle()
    assert cycle is not None and "edgeliquid.runtime.mavlink" in cycle
