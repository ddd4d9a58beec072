"""The layering holds: every module imports only from its own layer or the layers below it (the order the
README's Architecture section states), no import cycles among the project's modules, and the commands that
never solve never load a solver (Pyomo, highspy)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CASES_DIR

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("clearing", "solvers", "server", "dkw", "bench")
GENERATED = ("dkw.v1.",)


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
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
    assert {"clearing.engine", "solvers.api", "server.service", "dkw.commands"} <= set(graph)
    assert "clearing.formulation" in graph["clearing.engine"] and "solvers.api" in graph["clearing.engine"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


#: The README's layer order, bottom first. A module belongs to the layer of its longest matching prefix; it
#: may import from its own layer and the ones below, never from a layer above. A new module falls into its
#: package's layer; move it here (and in the README) when it belongs elsewhere.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("documents and market rules", ("clearing.model", "clearing.limits", "clearing.canonical", "clearing.signing",
                                    "clearing.document", "clearing.document_checker", "clearing.left_out",
                                    "clearing.rules", "clearing.figures",
                                    "clearing.index", "clearing.result")),
    ("the solver boundary", ("solvers.api", "solvers.tuning", "solvers.arrays")),
    ("the MILP description", ("clearing.formulation", "clearing.matrix", "clearing.reduce")),
    ("the solvers", ("solvers",)),
    ("the clearing and its checks", ("clearing",)),
    ("the callers", ("clearing.replay", "server", "dkw", "bench")),
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
    assert layer_of("clearing.replay.runner") == len(LAYERS) - 1 and layer_of("clearing.engine") == 4
    assert upward_imports({"clearing.model": {"clearing.engine"}, "clearing.engine": {"clearing.model"}}) == [
        "clearing.model (documents and market rules) imports clearing.engine (the clearing and its checks)"]


def test_no_import_cycles() -> None:
    modules = project_modules()
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    assert cycles(graph) == []


#: the solver boundary and what it hands over (options with their tuning, the array type): no solver in them
SOLVER_FREE = ("solvers.api", "solvers.tuning", "solvers.arrays")


def test_the_solver_boundary_and_the_domain_import_no_solver() -> None:
    """clearing/ (bar the engine's lazy back-end choice) and the solver boundary never import Pyomo or highspy."""
    offenders = []
    for name, path in project_modules().items():
        if not (name.startswith("clearing") or name in SOLVER_FREE):
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
    assert {f"solvers.fastpath.{p}" for p in phases} <= set(modules)
    assert not {"clearing.fastpath", "solvers.fast", "solvers.lns", "solvers.cuts", "clearing.warmstart"} & set(modules)
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    into_fast_path = {name for name, deps in graph.items() if name.startswith("clearing")
                      and any(d.startswith("solvers.fastpath") for d in deps)}
    assert into_fast_path == {"clearing.engine"}


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
    from clearing.document import load_auction_file
    from clearing.engine import clear

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
    code = "import sys, server.command, server.service; print(sorted(m for m in ('pyomo', 'highspy') if m in sys.modules))"
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
    commands; server.command; clearing.replay.command; bench.command) are the rest."""
    registered = registered_commands()
    named = {module: commands for module, commands in registered.items() if module.endswith("_command")}
    for module, commands in named.items():
        assert module.rpartition(".")[2].removesuffix("_command").split("_") == commands, module
    assert {"explain", "schema", "audit", "clients", "keys"} <= {c for commands in named.values() for c in commands}
    every = [c for commands in registered.values() for c in commands]
    assert len(every) == len(set(every))  # no command registered twice
