"""The house has no import circles (imports inside functions count), and the warehouse is at its
bottom: read from the source text, the way the shared structure tool reads it."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pipelines"


def imports(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its text (inside functions and
    under TYPE_CHECKING included)."""

    def module_name(path: Path) -> str:
        parts = path.relative_to(package.parent).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {module_name(p): p for p in package.rglob("*.py")}

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        base = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                parts = base.split(".")
                module = node.module or ""
                if node.level:
                    root = ".".join(parts[: len(parts) - node.level + 1])
                    module = f"{root}.{module}" if module else root
                targets |= {module, *(f"{module}.{a.name}" for a in node.names)}
        graph[name] = {r for t in targets if (r := resolve(t)) and r != name}
    return graph


def circle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        return list(exc.args[1])
    return None


def test_no_module_of_the_package_imports_itself_through_others() -> None:
    found = circle(imports())
    assert found is None, f"import circle: {' -> '.join(found or [])}"


def test_the_warehouse_imports_nothing_above_it() -> None:
    below = {"pipelines.settings", "pipelines.redaction", "pipelines.warehouse"}
    for module, targets in imports().items():
        if module.startswith("pipelines.warehouse"):
            above = {t for t in targets if t not in below and not t.startswith("pipelines.warehouse.")}
            assert not above, (module, above)


def test_the_check_finds_a_circle_through_an_import_inside_a_function(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("def f():\n    from pkg.high import g\n    return g\n")
    (package / "high.py").write_text("from pkg.low import f\n\ndef g():\n    return f\n")
    found = circle(imports(package)) or []
    assert set(found) == {"pkg.high", "pkg.low"} and found[0] == found[-1]  # a closed path
