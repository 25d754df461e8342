"""The floors (style.md, "The floors"): imports run downward only, and never in a circle.

Every .py file of the packages is parsed with `ast`; every import counts, at module level, inside
a function (a function-level import that dodges a cycle still is the cycle) and under
`TYPE_CHECKING`. Each module has a floor:

    top      5  cli.py, convrnn_video/ (the API, convrnn_video/cli.py, the demo)
    drivers  4  train/, infer/          (neither imports the other)
    runtime  3  runtime/                (checkpoints, run folders, device, DDP, the scores)
    models   2  convrnn/, segment/      (import only torch, the standard library and themselves)
    data     1  ingest/, shards/, stores/ (the prediction and label stores)
    bottom   0  convrnn_video/errors.py (the error base)

Installed, the stages are subpackages of `convrnn_video` (convrnn_video.train is train/), so
every import names them so; an import by the bare folder name (`from train.loop import ...`)
would take the user's own `train.py` and is a violation of its own kind (`bare`). Below,
modules are named by their folders (`train.loop` for convrnn_video.train.loop).

A violation is an edge (importer module, imported module) of one kind:

    up        the imported module sits on a higher floor
    sideways  train/ <-> infer/
    models    convrnn/ or segment/ import something other than torch, the standard library
              or their own package
    bare      a stage imported by its folder's name, not as convrnn_video.<stage>
    private   a `_name` imported from another module (private names stay in their module)
    cycle     an edge inside a circle of modules (a strongly connected component; importing a
              submodule also runs its packages' __init__, so those count as edges too)

KNOWN_DEBT lists the violations that exist today. The test fails on any violation not in it (a
new upward import or circle) and on any entry that no longer exists (delete it: the list only
shrinks). When the check was written (issue 20, section 3) it held 104 entries (up 4, sideways
20, private 3, cycle 77; 49 of them only inside functions, where a plain import hides them);
none are left: what both drivers use moved down to runtime/ (checkpoints, run folders, device,
DDP, metrics, Jaccard), the stores to stores/, the demo up to convrnn_video/demo.py.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "shards", "stores", "convrnn", "segment", "runtime", "train", "infer")
PACKAGES = (*STAGES, "convrnn_video")
TOP_LEVEL_MODULES = ("cli",)

BOTTOM, DATA, MODELS, RUNTIME, DRIVERS, TOP = range(6)
FLOOR_NAMES = ("bottom", "data", "models", "runtime", "drivers", "top")
# The floor of every module under a prefix; the longest matching prefix wins.
FLOORS = {
    "convrnn_video.errors": BOTTOM,
    "ingest": DATA,
    "shards": DATA,
    "stores": DATA,
    "convrnn": MODELS,
    "segment": MODELS,
    "runtime": RUNTIME,
    "train": DRIVERS,
    "infer": DRIVERS,
    "convrnn_video": TOP,
    "cli": TOP,
}
DRIVER_PACKAGES = ("train", "infer")
MODEL_PACKAGES = ("convrnn", "segment")
MODEL_MAY_IMPORT = ("torch", "__future__")  # plus the standard library and their own package

# Violations that exist today, by kind: (importer, imported). None since issue 20, section 3;
# never add one (move the code down a floor instead).
KNOWN_DEBT: dict[str, set[tuple[str, str]]] = {
    "up": set(),
    "bare": set(),
    "sideways": set(),
    "models": set(),
    "private": set(),
    "cycle": set(),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_files() -> dict[str, Path]:
    """Module name -> file, for every .py file of the packages and the top-level modules."""
    files = {name: ROOT / f"{name}.py" for name in TOP_LEVEL_MODULES}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            files[module_name(path)] = path
    return files


def short(name: str) -> str:
    """convrnn_video.train.loop -> train.loop: a stage module by its folder's name."""
    head, _, rest = name.partition(".")
    return rest if head == "convrnn_video" and rest.split(".")[0] in STAGES else name


def is_project(name: str) -> bool:
    return name.split(".")[0] in FLOORS


def package_of(module: str, path: Path) -> str:
    """The package a module's relative imports start from."""
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def imports(module: str, path: Path, modules: set[str]) -> list[tuple[str, str | None]]:
    """(imported module, imported name or None) for every import statement in the file."""
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_of(module, path).split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
                if source.split(".")[0] in STAGES:  # the name it is installed under
                    source = f"convrnn_video.{source}"
            else:
                source = node.module or ""
            for alias in node.names:
                full = f"{source}.{alias.name}"
                # `from a import b` imports the module a.b when there is one, else a name of a
                found.append((full, None) if short(full) in modules else (source, alias.name))
    return found


def resolve(target: str, modules: set[str]) -> str:
    """The project module an import runs (`a.b.name` -> `a.b`)."""
    while target not in modules and "." in target:
        target = target.rpartition(".")[0]
    return target


def floor(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in FLOORS:
            return FLOORS[".".join(parts[:n])]
    raise KeyError(module)


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for node in sorted(graph):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return components


def violations() -> dict[str, set[tuple[str, str]]]:
    """Every edge that breaks the floors today, by kind."""
    files = project_files()
    modules = set(files)
    stdlib = sys.stdlib_module_names
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    edges: set[tuple[str, str]] = set()
    graph: dict[str, set[str]] = defaultdict(set)
    for importer, path in files.items():
        ancestors = {".".join(importer.split(".")[:n]) for n in range(1, importer.count(".") + 1)}
        for full, name in imports(importer, path, modules):
            target = short(full)
            top = target.split(".")[0]
            if top in STAGES and full == target:
                found["bare"].add((importer, target))
            if importer.split(".")[0] in MODEL_PACKAGES and not (
                top in stdlib or top in MODEL_MAY_IMPORT or top == importer.split(".")[0]
            ):
                found["models"].add((importer, target if not is_project(target) else top))
            if not is_project(target):
                continue
            imported = resolve(target, modules)
            if imported == importer:
                continue
            edges.add((importer, imported))
            graph[importer].add(imported)
            # importing a.b.c runs a/__init__ and a/b/__init__ first
            parts = imported.split(".")
            for n in range(1, len(parts)):
                parent = ".".join(parts[:n])
                if parent == "convrnn_video":
                    continue  # its __init__ imports nothing of ours until a name is used
                if parent in modules and parent not in ancestors and parent != importer:
                    graph[importer].add(parent)
            if name and name.startswith("_") and not name.startswith("__"):
                found["private"].add((importer, f"{imported}.{name}"))
            if floor(imported) > floor(importer):
                found["up"].add((importer, imported))
            pair = {importer.split(".")[0], imported.split(".")[0]}
            if pair == set(DRIVER_PACKAGES):
                found["sideways"].add((importer, imported))
    for component in strongly_connected(graph):
        found["cycle"] |= {(a, b) for a, b in edges if a in component and b in component}
    return {kind: found.get(kind, set()) for kind in KNOWN_DEBT}


def describe(kind: str, edge: tuple[str, str]) -> str:
    importer, imported = edge
    if kind == "private":
        return f"{importer} imports the private name {imported}"
    if kind == "models":
        return f"{importer} (models floor) imports {imported}: models import only torch"
    floors = (
        f"({FLOOR_NAMES[floor(importer)]} -> {FLOOR_NAMES[floor(resolve(imported, {imported}))]})"
    )
    return f"{importer} imports {imported} {floors}"


def test_no_new_violations() -> None:
    """An upward, sideways or circular import that KNOWN_DEBT does not list fails."""
    found = violations()
    new = [
        f"{kind}: {describe(kind, edge)}"
        for kind, edges in found.items()
        for edge in sorted(edges - KNOWN_DEBT[kind])
    ]
    assert not new, (
        "imports that break the floors (style.md, 'The floors'): move the imported thing down "
        "to a floor both sides can reach instead of importing up, sideways or in a circle:\n  "
        + "\n  ".join(new)
    )


def test_known_debt_only_shrinks() -> None:
    """A KNOWN_DEBT entry whose edge is gone must be deleted from the list."""
    found = violations()
    gone = [
        f"{kind}: {edge}"
        for kind, edges in KNOWN_DEBT.items()
        for edge in sorted(edges - found[kind])
    ]
    assert not gone, "fixed, delete from KNOWN_DEBT:\n  " + "\n  ".join(gone)


def test_the_package_init_imports_nothing_of_ours_when_imported() -> None:
    """Every stage import runs convrnn_video/__init__.py: it may name the API's things only
    inside functions (loaded on first use), or every stage would import the top floor."""
    tree = ast.parse((ROOT / "convrnn_video" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            assert not any(is_project(short(n or "")) for n in names), ast.unparse(node)


def test_every_module_has_a_floor() -> None:
    """A new package must be given a floor before it can be checked."""
    for module in project_files():
        floor(module)


def test_every_stage_is_installed_from_its_folder() -> None:
    """A stage folder that pyproject.toml does not map imports in a clone, not once installed."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for stage in STAGES:
        assert setuptools["package-dir"].get(f"convrnn_video.{stage}") == stage, stage
        for init in sorted((ROOT / stage).rglob("__init__.py")):
            package = ".".join(("convrnn_video", *init.parent.relative_to(ROOT).parts))
            assert package in setuptools["packages"], f"{package} is not in [tool.setuptools]"
