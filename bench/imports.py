"""Which project module imports which: the dependency picture in docs/architecture.md.

    python bench/imports.py            # a Markdown list, module by module
    python bench/imports.py --packages # package to package only

Counts every import in a module, function-level ones too (tests/test_architecture.py
holds that there are no circles in this graph).
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("indexer", "ranker", "web")


def project_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every project module `path` imports, anywhere in it."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out |= {n for n in names if n in modules}
    return out


def graph() -> dict[str, set[str]]:
    """Module -> the modules it imports; `from indexer import settings` counts as
    `indexer.settings`, not as the (empty) package `indexer`."""
    modules = project_modules()
    packages = {m for m, p in modules.items() if p.name == "__init__.py"}
    return {m: imports(p, modules) - {m} - packages for m, p in modules.items()}


def package_of(module: str) -> str:
    parts = module.split(".")
    if parts[-1] == "__main__":
        return f"{parts[0]} (command line)"
    return ".".join(parts[:2]) if parts[:2] in (["indexer", "store"], ["ranker", "features"],
                                                 ["ranker", "training"]) else parts[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packages", action="store_true")
    args = parser.parse_args()
    edges = graph()
    if args.packages:
        packages: dict[str, set[str]] = {}
        for module, targets in edges.items():
            packages.setdefault(package_of(module), set()).update(
                package_of(t) for t in targets if package_of(t) != package_of(module))
        for package, targets in sorted(packages.items()):
            print(f"- `{package}` → {', '.join(f'`{t}`' for t in sorted(targets)) or '(nothing of the project)'}")
        return 0
    for module, targets in sorted(edges.items()):
        print(f"- `{module}` → {', '.join(f'`{t}`' for t in sorted(targets)) or '—'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
