"""The structure docs/architecture.md describes, held: no import circles, the backend
chosen in one place, the environment read in one module, the backend implementations
reached only through the store contract. The import graph is bench/imports.py's, the
one the document's dependency picture is printed from."""

from __future__ import annotations

import ast
from pathlib import Path

from bench.imports import graph, imports, project_modules

# Modules that may name a backend implementation: the store itself and the one factory.
# The Learning-to-Rank export is OpenSearch's own format (its bodies, its client), whatever
# backend serves.
# The shopper store's cluster implementation is one too: it keeps events and profiles in
# the cluster (the SQLite one, ranker.events.store, uses no backend).
IMPLEMENTATIONS = {"indexer.store.embedded", "indexer.store.embedded_index", "indexer.store.embedded_writer",
                   "indexer.store.generations", "indexer.store.opensearch", "indexer.store.opensearch_bodies",
                   "indexer.store.opensearch_client", "indexer.store.filter_columns", "ranker.events.cluster_store",
                   "ranker.rules.cluster_store", "web.cluster_tokens"}
MAY_IMPORT_IMPLEMENTATIONS = {"indexer.backends", "indexer.store", "ranker.events.stores", "ranker.rules.stores",
                              "web.token_stores"}
CLUSTER_FORMAT = {"indexer.store.opensearch_client", "indexer.store.opensearch_bodies"}
CLUSTER_FORMAT_USERS = {"ranker.ltr_export", "ranker.__main__"}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    found = []
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph[module]):
            if target in path:
                found.append([*path[path.index(target):], target])
            elif target not in done:
                visit(target, [*path, target])
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    return found


def test_there_are_no_import_circles() -> None:
    assert circles(graph()) == []


def test_the_check_finds_a_circle_through_a_function_level_import(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    a.write_text("def f():\n    from b import g\n")
    b.write_text("import c\n")
    c.write_text("from a import f\n")
    modules = {"a": a, "b": b, "c": c}
    assert circles({m: imports(p, modules) for m, p in modules.items()}) == [["a", "b", "c", "a"]]


def test_only_the_store_and_its_factory_name_a_backend() -> None:
    modules = project_modules()
    offenders = {}
    for module, path in modules.items():
        if module in IMPLEMENTATIONS or module in MAY_IMPORT_IMPLEMENTATIONS:
            continue
        named = imports(path, modules) & IMPLEMENTATIONS
        if module in CLUSTER_FORMAT_USERS:
            named -= CLUSTER_FORMAT
        if named:
            offenders[module] = sorted(named)
    assert offenders == {}
    opensearch = {m for m in IMPLEMENTATIONS if ".opensearch" in m}
    for module in opensearch:  # the cluster backend shares nothing with the embedded one but neutral modules
        assert not {i for i in imports(modules[module], modules) if ".embedded" in i or i.endswith("generations")}


def _calls(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            names.append(ast.unparse(func))
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and ast.unparse(node.value) == "os.environ":
            names.append("os.environ[]")
    return names


def test_the_backend_is_chosen_once_and_the_environment_read_in_one_module() -> None:
    for module, path in project_modules().items():
        calls = _calls(path)
        if module != "indexer.backends":
            assert not [c for c in calls if c.endswith("backend_name")], module
        if module != "indexer.settings":
            reads = [c for c in calls if c in ("os.environ.get", "os.getenv", "os.environ[]")]
            assert reads == [], (module, reads)
