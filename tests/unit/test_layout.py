"""The package's imports run one way: no module imports itself back through others, and
the shells (cli, api, web) sit above the engine, never below it (README, Architecture)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "facesearch"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Every facesearch module and the facesearch modules it imports, anywhere in it (an
    import inside a function counts: it runs too)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom) and node.module in modules and not node.level:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    found.add(sub if sub in modules else node.module)
        graph[name] = found - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_module_imports_itself_back() -> None:
    assert cycles(imports()) == []


def in_layer(module: str, layer: str) -> bool:
    return module == f"facesearch.{layer}" or module.startswith(f"facesearch.{layer}.")


# (layer, the layers it must not import): the engine knows no shell, the server's parts
# know no HTTP, and no shell calls another (the API and the CLI both call the engine).
BELOW = {
    "engine": ("serving", "api", "web", "cli"),
    "serving": ("api", "web", "cli"),
    "api": ("web", "cli"),
    "web": ("cli",),
}


def test_the_shells_sit_above_the_engine_and_api_does_not_use_web() -> None:
    # facesearch.app puts the API and the web UI together: the API never imports the pages.
    upward = [
        (module, target)
        for module, targets in imports().items()
        for layer, above in BELOW.items()
        if in_layer(module, layer)
        for target in targets
        if any(in_layer(target, a) for a in above)
    ]
    assert upward == []


def test_the_command_line_is_one_package() -> None:
    graph = imports()
    assert "facesearch.cli.main" in graph
    strays = [m for m in graph if m.startswith(("facesearch.cli_", "facesearch.render"))]
    assert strays == [], "command-line modules outside facesearch/cli/"
    assert "facesearch.api.commands" not in graph
