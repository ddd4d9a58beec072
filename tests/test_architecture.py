"""The layering holds: every module imports only from its own layer or the layers below it (the order the
README's Architecture section states), no import cycles among the project's modules, and the commands that
never solve never load a solver (Pyomo, highspy)."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import CASES_DIR

ROOT = Path(__file__).resolve().parents[1]
#: The repository's folders and the import names they install as (pyproject.toml's package-dir): one
#: top-level name, dkw (issue 26).
PACKAGES = {"dkw": "dkw", "clearing": "dkw.clearing", "solvers": "dkw.solvers", "server": "dkw.server",
            "bench": "dkw.bench"}
GENERATED = ("dkw.v1.",)


def project_modules() -> dict[str, Path]:
    modules = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = (package, *path.relative_to(ROOT / folder).with_suffix("").parts)
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            if not name.startswith(GENERATED):
                modules[name] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every project module `name` imports, anywhere in the file (top level, in functions, under
    TYPE_CHECKING): `import a.b` and `from a import b` name module a.b where it exists, else a."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        out.update(t for t in targets if t in modules and t != name)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

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
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_sees_the_project() -> None:
    modules = project_modules()
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    assert {"dkw.clearing.engine", "dkw.solvers.api", "dkw.server.service", "dkw.commands"} <= set(graph)
    assert {"dkw.clearing.formulation", "dkw.solvers.api"} <= graph["dkw.clearing.engine"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


#: The README's layer order, bottom first. A module belongs to the layer of its longest matching prefix; it
#: may import from its own layer and the ones below, never from a layer above. A new module falls into its
#: package's layer; move it here (and in the README) when it belongs elsewhere.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("documents and market rules", ("dkw.clearing.model", "dkw.clearing.limits", "dkw.clearing.canonical",
                                    "dkw.clearing.signing", "dkw.clearing.document", "dkw.clearing.document_checker",
                                    "dkw.clearing.left_out", "dkw.clearing.rules", "dkw.clearing.figures",
                                    "dkw.clearing.index", "dkw.clearing.result")),
    ("the solver boundary", ("dkw.solvers.api", "dkw.solvers.tuning", "dkw.solvers.arrays")),
    ("the MILP description", ("dkw.clearing.formulation", "dkw.clearing.matrix", "dkw.clearing.reduce")),
    ("the solvers", ("dkw.solvers",)),
    ("the clearing and its checks", ("dkw.clearing",)),
    ("the callers", ("dkw.clearing.replay", "dkw.server", "dkw.bench",
                     "dkw")),  # the dkw package's own modules (dkw.cli, dkw.commands, dkw.client, dkw.v1...)
)


def layer_of(module: str) -> int:
    matches = [(len(prefix), level) for level, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} is in no layer of LAYERS"
    return max(matches)[1]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
                  for name, targets in graph.items() for target in targets if layer_of(target) > layer_of(name))


def test_imports_point_down_the_layers() -> None:
    modules = project_modules()
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    assert upward_imports(graph) == []
    # the check sees an upward import where there is one, and places modules by their longest prefix
    assert layer_of("dkw.clearing.replay.runner") == len(LAYERS) - 1 and layer_of("dkw.clearing.engine") == 4
    assert upward_imports({"dkw.clearing.model": {"dkw.clearing.engine"},
                           "dkw.clearing.engine": {"dkw.clearing.model"}}) == [
        "dkw.clearing.model (documents and market rules) imports dkw.clearing.engine (the clearing and its checks)"]


def test_no_import_cycles() -> None:
    modules = project_modules()
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    assert cycles(graph) == []


#: the solver boundary and what it hands over (options with their tuning, the array type): no solver in them
SOLVER_FREE = ("dkw.solvers.api", "dkw.solvers.tuning", "dkw.solvers.arrays")


def test_the_solver_boundary_and_the_domain_import_no_solver() -> None:
    """clearing/ (bar the engine's lazy back-end choice) and the solver boundary never import Pyomo or highspy."""
    offenders = []
    for name, path in project_modules().items():
        if not (name.startswith("dkw.clearing") or name in SOLVER_FREE):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom) and node.col_offset == 0:
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if any(n.split(".")[0] in ("pyomo", "highspy") for n in names):
                    offenders.append(name)
    assert offenders == []


def test_the_fast_path_is_one_package_of_phases() -> None:
    """The fast path is solvers/fastpath/, one module per phase, entered through `auction.solve_fast`; its
    old near-homonyms (clearing/fastpath.py, solvers/fast.py) are gone, and the phases import the domain
    (clearing) but the domain imports none of them, bar the engine's lazy choice of the back-end."""
    modules = project_modules()
    phases = {"prepare", "split", "starts", "polish", "cuts", "search", "pool", "component", "auction"}
    assert {f"dkw.solvers.fastpath.{p}" for p in phases} <= set(modules)
    gone = {"dkw.clearing.fastpath", "dkw.solvers.fast", "dkw.solvers.lns", "dkw.solvers.cuts", "dkw.clearing.warmstart"}
    assert not gone & set(modules)
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    into_fast_path = {name for name, deps in graph.items() if name.startswith("dkw.clearing")
                      and any(d.startswith("dkw.solvers.fastpath") for d in deps)}
    assert into_fast_path == {"dkw.clearing.engine"}


SOLVER_CHECK = """
import sys
from dkw.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
finally:
    print("LOADED=" + ",".join(sorted(m for m in ("pyomo", "highspy") if m in sys.modules)), file=sys.stderr)
raise SystemExit(code)
"""


def solvers_loaded_by(*args: str) -> str:
    """Run `dkw ARGS` in a fresh interpreter; which of Pyomo and highspy it loaded."""
    proc = subprocess.run([sys.executable, "-c", SOLVER_CHECK, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stderr.splitlines() if line.startswith("LOADED=")][-1].removeprefix("LOADED=")


@pytest.mark.slow
def test_validate_and_verify_load_no_solver(tmp_path: Path) -> None:
    """verify loads highspy only to re-solve the fixed-integer LP that defines the prices (docs/result.md,
    "Checking a result"), never Pyomo; a result without prices loads nothing."""
    from dkw.clearing.document import load_auction_file
    from dkw.clearing.engine import clear

    auction = str(CASES_DIR / "01-merit-order.json")
    result = tmp_path / "result.json"
    doc = clear(load_auction_file(auction)).to_document()
    result.write_text(json.dumps(doc))
    assert solvers_loaded_by("validate", auction) == ""
    assert solvers_loaded_by("verify", auction, str(result)) == "highspy"
    unpriced = tmp_path / "unpriced.json"
    unpriced.write_text(json.dumps({**doc, "prices": []}))
    assert solvers_loaded_by("verify", auction, str(unpriced)) == ""
    assert solvers_loaded_by("--help") == ""
    # and the check itself sees a solver where one is loaded
    assert "highspy" in solvers_loaded_by("clear", auction, "--quiet", "--output", str(tmp_path / "again.json"))


def test_the_grpc_main_process_loads_no_solver() -> None:
    code = ("import sys, dkw.server.command, dkw.server.service; "
            "print(sorted(m for m in ('pyomo', 'highspy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def registered_commands() -> dict[str, list[str]]:
    """The subcommands each module of `dkw.cli.COMMAND_MODULES` registers, in their order."""
    import argparse
    import importlib

    from dkw.cli import COMMAND_MODULES

    out = {}
    for name in COMMAND_MODULES:
        subparsers = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(name).register(subparsers)
        out[name] = list(subparsers.choices)
    return out


def test_each_command_is_in_the_module_of_its_name() -> None:
    """A module `x_command` registers `dkw x` and nothing else; `a_b_command` registers a and b (a few
    related commands kept together): a newcomer finds `dkw explain` in dkw/explain_command.py and `dkw audit`
    in server/clients_keys_audit_command.py. The package-wide command modules (dkw.commands: the clearing
    commands; dkw.server.command; dkw.clearing.replay.command; dkw.bench.command) are the rest."""
    registered = registered_commands()
    named = {module: commands for module, commands in registered.items() if module.endswith("_command")}
    for module, commands in named.items():
        assert module.rpartition(".")[2].removesuffix("_command").split("_") == commands, module
    assert {"explain", "schema", "audit", "clients", "keys"} <= {c for commands in named.values() for c in commands}
    every = [c for commands in registered.values() for c in commands]
    assert len(every) == len(set(every))  # no command registered twice


#: The repository's folders that are not import names of their own (issue 26): PyPI has distributions named
#: bench, clearing and solvers, so dkw installs and imports them only as dkw.bench, dkw.clearing...
FOLDER_NAMES = {folder for folder in PACKAGES if folder != "dkw"}


def test_no_module_imports_a_folder_by_its_bare_name() -> None:
    """`from clearing.model import ...` would still work from the repository root (the current directory
    leads sys.path) but as a second copy of the module, and nowhere else; every import says dkw.clearing."""
    paths = [*project_modules().values(), *(ROOT / "tests").glob("*.py")]
    offenders = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names
                          if n.split(".")[0] in FOLDER_NAMES]
    assert offenders == []


def test_the_distribution_installs_one_import_name() -> None:
    """The installed distribution's only top-level import name is dkw, and pyproject.toml lists every
    package of the tree under it (a package left out of the list would be missing from the wheel)."""
    # the installed one: not the dkw.egg-info an editable install leaves in the root (on sys.path in a test run)
    installed = [p for p in sys.path if Path(p or ".").resolve() != ROOT]
    dists = list(importlib.metadata.distributions(name="dkw", path=installed))
    assert dists, "dkw is not installed"
    dist = dists[0]
    assert (dist.read_text("top_level.txt") or "").split() == ["dkw"]
    info_dir = f"dkw-{dist.version}.dist-info"
    record = [f.parts[0] for f in dist.files or () if f.parts[0] != ".."]  # ../../bin/dkw: the script
    editable = any(top.startswith("__editable__") for top in record)
    if not editable:  # a wheel's RECORD: only dkw/... and its dist-info
        assert set(record) == {"dkw", info_dir}
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(config["packages"])
    assert {name.split(".")[0] for name in listed} == {"dkw"}
    mapping = {"dkw": "dkw", **{package: folder for package, folder in config["package-dir"].items()}}
    assert {folder: package for package, folder in mapping.items()} == PACKAGES
    in_tree = {".".join((PACKAGES[init.relative_to(ROOT).parts[0]], *init.relative_to(ROOT).parts[1:-1]))
               for folder in PACKAGES for init in (ROOT / folder).rglob("__init__.py")}
    assert listed == in_tree


IMPORTED_NAMES = """
import importlib, sys
import dkw.cli
for name in dkw.cli.COMMAND_MODULES:
    importlib.import_module(name)
import dkw.clearing.model
print(dkw.clearing.model.__file__)
print(sorted(m for m in sys.modules if m.split(".")[0] in {names!r}))
"""


@pytest.mark.parametrize("where", ["root", "elsewhere"])
def test_the_commands_load_as_dkw_from_any_directory(tmp_path: Path, where: str) -> None:
    """From the repository root (where ./dkw shadows the installed package: dkw/__init__.py extends its
    __path__) and from any other directory, every command module loads, and no module under a bare
    folder name (a string in COMMAND_MODULES, a -m or a forkserver preload spelled the old way would)."""
    cwd = ROOT if where == "root" else tmp_path
    code = IMPORTED_NAMES.format(names=sorted(FOLDER_NAMES))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert proc.returncode == 0, proc.stderr
    model_file, bare = proc.stdout.splitlines()
    assert bare == "[]"
    assert Path(model_file).parent.name == "clearing"
