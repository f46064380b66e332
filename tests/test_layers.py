"""Imports run one way: autodiff <- engine <- optim <- train <- (estimators, compare, cli).

Read from the source (every import statement, those inside functions too), so a lazy import
that reaches up is caught as well as one at the top of a module.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import descend

SRC = Path(descend.__file__).parent
#: each layer, and what it must never import (what sits above it)
ABOVE = {
    "autodiff": {"engine", "optim", "train", "estimators", "compare", "cli", "torch", "nn",
                 "linesearch"},
    "engine": {"optim", "train", "estimators", "compare", "cli", "torch"},
    "optim": {"train", "estimators", "compare", "cli", "torch"},
    "train": {"estimators", "compare", "cli", "torch"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the descend modules it imports (a name imported from a package that is not
    a module of its own counts as the package)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            edges[name].update(t for t in targets if t in modules and t != name)
    return edges


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_layer_imports_one_above_it() -> None:
    upward = []
    for module, targets in _imports(_modules()).items():
        forbidden = ABOVE.get(_layer(module), set())
        upward += [f"{module} -> {t}" for t in targets if _layer(t) in forbidden]
    assert not upward, "imports reaching up a layer:\n" + "\n".join(sorted(upward))


def test_the_only_import_circle_is_the_autodiff_core() -> None:
    # the whole package, lazy imports included: the command lines too (descend.cli and
    # descend.torch.cli share their flag helpers through descend._flags, below both)
    edges = _imports(_modules())
    circles = [c for c in _strongly_connected(sorted(_modules()), edges) if len(c) > 1]
    outside = [c for c in circles if not all(_layer(m) == "autodiff" for m in c)]
    assert not outside, f"import circles: {outside}"


def _strongly_connected(nodes: list[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                out.append(sorted(component))
    return out
