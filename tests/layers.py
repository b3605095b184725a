"""The import contract of the house: which package may import which, read from the source's AST.

Layers, bottom to top (``docs/architecture.md``): GM crypto and PKI (``gmpki``) → the foundation (``kernel``:
settings, database, files, canonical JSON, object store, the installation's keys) → domains (``filing``,
``stamping``, ``archive``, ``backup``) → the Airflow glue (``plugins/sealflow_airflow``) → DAG files and the
shell (``sealflow``: CLI, stack, demo). A module may import only from its own layer or below. Every import
counts — at module level, inside functions, and ``importlib.import_module`` with a literal or f-string
prefix — because an import inside a function is a cycle all the same, only hidden.

Three more rules of the house, checked the same way:
- DAG files import only the Airflow glue (``sealflow_airflow``): every domain object reaches a task
  through the glue's composition root (``sealflow_airflow.root``).
- Programs (``PROGRAMS``: the platform simulator, the identity register simulator, the embedded TSA)
  are run with ``python -m``; no module of ours imports them, so the domain never depends on a stand-in.
- No ``from x import _name`` of another module's private name: what a module shares, it names publicly.

Decisions:
- The AST, not import-time tracing: a module imported only on one code path is still checked.
- Cycles are reported between the packages ``LAYERS`` names (``filing`` ↔ ``stamping``), since a cycle
  between modules of one package is that package's own business.
- Existing violations are listed in ``tests/layers_baseline.txt`` so that the contract can be switched on
  before the redesign removes them: a new violation fails at once, a fixed one must be struck from the
  list (the list can only shrink).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Longest prefix wins. Rank = layer; equal ranks may import each other (cycles checked separately).
LAYERS: dict[str, int] = {
    "gmpki": 0,
    "kernel": 1,
    "filing": 2,
    "stamping": 2,
    "archive": 2,
    "backup": 2,
    "sealflow_airflow": 3,
    "dags": 4,
    "sealflow": 4,
}
PROGRAMS = ("filing.simulator", "stamping.registry.identity_simulator", "stamping.tsa.server")
SOURCES = {"gmpki": "gmpki", "kernel": "kernel", "stamping": "stamping", "archive": "archive", "filing": "filing",
           "backup": "backup", "sealflow": "sealflow", "sealflow_airflow": "plugins/sealflow_airflow", "dags": "dags"}


def layer_of(module: str) -> tuple[str, int] | None:
    """The (prefix, rank) that governs ``module``, or None for third-party modules."""
    best = None
    for prefix, rank in LAYERS.items():
        if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, rank)
    return best


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    line: int
    in_function: bool
    names: tuple[str, ...] = ()  # the names a ``from x import a, b`` takes from a module (not submodules)

    def __str__(self) -> str:
        return f"{self.importer} -> {self.imported}"


def module_name(path: Path) -> str:
    for name, folder in SOURCES.items():
        base = ROOT / folder
        if path.is_relative_to(base):
            rel = path.relative_to(base).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            return ".".join([name, *parts])
    raise ValueError(path)


def is_module(dotted: str) -> bool:
    """Whether ``dotted`` names one of our modules or packages (not a class or function inside one)."""
    head, _, rest = dotted.partition(".")
    folder = SOURCES.get(head)
    if folder is None:
        return False
    path = ROOT / folder / Path(*rest.split(".")) if rest else ROOT / folder
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _resolve(importer: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def edges_of(path: Path) -> Iterator[Edge]:
    importer = module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    func_lines: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(fn):
                if hasattr(inner, "lineno"):
                    func_lines.add(inner.lineno)
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(importer, node, is_package)
            # ``from x import y`` is an edge to the module ``x.y`` when y is a module, else to ``x``.
            targets = [f"{base}.{a.name}" if is_module(f"{base}.{a.name}") else base for a in node.names]
            private = tuple(a.name for a in node.names if a.name.startswith("_") and not is_module(f"{base}.{a.name}"))
            if private and layer_of(base) and base != importer:
                yield Edge(importer, base, node.lineno, node.lineno in func_lines, private)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args):
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                targets = [arg.value]
            elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
                targets = [str(arg.values[0].value).rstrip(".")]
        for target in targets:
            if layer_of(target):
                yield Edge(importer, target, node.lineno, node.lineno in func_lines)


def all_edges() -> list[Edge]:
    edges: list[Edge] = []
    for folder in SOURCES.values():
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations/versions" in path.as_posix():
                continue
            edges.extend(edges_of(path))
    return edges


def upward(edges: list[Edge]) -> list[Edge]:
    out = []
    for e in edges:
        src, dst = layer_of(e.importer), layer_of(e.imported)
        if src and dst and dst[1] > src[1]:
            out.append(e)
    return out


def package_cycles(edges: list[Edge]) -> list[tuple[str, str]]:
    """Pairs of same-layer packages (as ``LAYERS`` names them) importing each other directly."""
    pairs = {(layer_of(e.importer)[0], layer_of(e.imported)[0]) for e in edges}
    pairs = {(a, b) for a, b in pairs if a != b}
    return sorted((a, b) for a, b in pairs if (b, a) in pairs and a < b)


def glue_bypassed(edges: list[Edge]) -> list[Edge]:
    """DAG files importing anything of ours but the Airflow glue."""
    return [e for e in edges if layer_of(e.importer)[0] == "dags" and layer_of(e.imported)[0] not in
            ("dags", "sealflow_airflow")]


def programs_imported(edges: list[Edge]) -> list[Edge]:
    """Imports of a program (run with ``python -m``) by any module but the program itself."""
    return [e for e in edges for p in PROGRAMS if (e.imported == p or e.imported.startswith(p + "."))
            and not (e.importer == p or e.importer.startswith(p + "."))]


def private_names(edges: list[Edge]) -> list[str]:
    """``importer -> module._name``: private names taken from another module."""
    return [f"{e.importer} -> {e.imported}.{name}" for e in edges for name in e.names]


def violations() -> list[str]:
    edges = all_edges()
    found = {f"upward: {e}" for e in upward(edges)}
    found |= {f"glue only: {e}" for e in glue_bypassed(edges)}
    found |= {f"program imported: {e}" for e in programs_imported(edges)}
    found |= {f"private name: {text}" for text in private_names(edges)}
    found |= {f"cycle: {a} <-> {b}" for a, b in package_cycles(edges)}
    found |= {"cycle: " + " <-> ".join(group) for group in unit_cycles(edges)}
    return sorted(found)


def unit_of(module: str) -> str:
    """The unit of the cycle check: a package's first two name parts (``stamping.ofd``, ``filing.protocol``)."""
    return ".".join(module.split(".")[:2])


def unit_cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected groups of units (two or more), found with Tarjan's algorithm."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        a, b = unit_of(e.importer), unit_of(e.imported)
        if a != b:
            graph.setdefault(a, set()).add(b)
            graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(groups)
