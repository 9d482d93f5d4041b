"""The shape of the house: every module imports on its own, imports form no cycle, modules stay
under 400 lines, and the data stage does not depend on training. Read from the source with ast,
so a failure names the modules and lines to look at."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "lmlab"
MAX_LINES = 400
# Cycles tolerated for now (none: atomic writes moved to lmlab/io.py, ending checkpoint <-> runs).
KNOWN_CYCLES: list[set[str]] = []


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, module_level: bool) -> dict[str, int]:
    """lmlab modules that `name` imports -> first line. Module level: the statements that run
    on import (not inside functions or `if TYPE_CHECKING:`); otherwise every import."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    nodes = top_level(tree.body) if module_level else ast.walk(tree)
    found: dict[str, int] = {}
    for node in nodes:
        for target in targets(name, node):
            if target in MODULES and target != name:
                found.setdefault(target, node.lineno)
    return found


def top_level(body: list[ast.stmt]):
    for node in body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, (ast.If, ast.Try)):
            yield from top_level(node.body + node.orelse + [s for h in getattr(node, "handlers", []) for s in h.body])
        else:
            yield node


def targets(name: str, node: ast.AST) -> list[str]:
    """The modules an import statement loads: `from pkg import sub` loads pkg.sub when it is a module."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: resolve against this module's package
        package = name.split(".") if MODULES[name].name == "__init__.py" else name.split(".")[:-1]
        base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
    subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
    return subs or [base]


def cycles(module_level: bool) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    graph = {m: set(imports(m, module_level)) for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

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
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize("name", sorted(m for m in MODULES if not m.endswith("__main__")))  # __main__ runs the CLI
def test_each_module_imports(name):
    importlib.import_module(name)


def test_no_import_cycle_at_module_level():
    assert cycles(module_level=True) == []


def test_no_import_cycle_counting_imports_inside_functions():
    found = [c for c in cycles(module_level=False) if set(c) not in KNOWN_CYCLES]
    assert found == [], "import cycles (a function-level import counts too): " + "; ".join(" <-> ".join(c)
                                                                                        for c in found)


def test_no_module_over_400_lines():
    sizes = {name: path.read_text(encoding="utf-8").count("\n") for name, path in MODULES.items()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def function_lengths(package: str) -> dict[str, int]:
    """module:function -> lines, for every function (methods too) under `package`."""
    found = {}
    for name, path in MODULES.items():
        if name == package or name.startswith(package + "."):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found[f"{name}:{node.name}"] = node.end_lineno - node.lineno + 1
    return found


def test_the_training_loop_reads_like_the_algorithm():
    """The loop only sequences named phases (at most 30 lines), and no function of the trainer
    grows past 40: a new training feature is a phase or a function of its own."""
    lengths = function_lengths("lmlab.train")
    assert lengths["lmlab.train.loop:train_loop"] <= 30
    assert {f: n for f, n in lengths.items() if n > 40} == {}


def test_the_data_stage_does_not_depend_on_training():
    """data/ may import tokenizer/, registry, errors, progress, config_base, never train/ or model/."""
    for name in MODULES:
        if name == "lmlab.data" or name.startswith("lmlab.data."):
            bad = {t: line for t, line in imports(name, module_level=False).items()
                   if t.startswith(("lmlab.train", "lmlab.model"))}
            assert bad == {}, f"{name} imports {bad}"


def test_the_graph_reader_sees_known_edges():
    """Guard the checks above against a reader that finds nothing."""
    assert "lmlab.registry" in imports("lmlab.model.components.norm", module_level=True)
    assert "lmlab.presets.registry" in imports("lmlab.presets.basic", module_level=True)
    assert "lmlab.checkpoint" not in imports("lmlab.runs", module_level=True)
    assert "lmlab.checkpoint" in imports("lmlab.runs", module_level=False)
    assert len(MODULES) > 60


def _under(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


# DESIGN.md's one-way rules: (who, never imports), counting imports inside functions too.
STAGES = ("lmlab.data", "lmlab.tokenizer", "lmlab.model", "lmlab.train", "lmlab.eval", "lmlab.analysis",
          "lmlab.generate", "lmlab.interop", "lmlab.study", "lmlab.load", "lmlab.runs", "lmlab.checkpoint",
          "lmlab.manifest", "lmlab.config", "lmlab.presets", "lmlab.io", "lmlab.registry", "lmlab.figures",
          "lmlab.sanity")
READERS = ("lmlab.load", "lmlab.interop", "lmlab.eval", "lmlab.analysis", "lmlab.generate", "lmlab.runs",
           "lmlab.checkpoint", "lmlab.manifest", "lmlab.figures", "lmlab.sanity")
ONE_WAY = [(STAGES, ("lmlab.report", "lmlab.commands", "lmlab.cli")),
           (READERS, ("lmlab.train",)),
           (("lmlab.model", "lmlab.tokenizer"), ("lmlab.data", "lmlab.train"))]


@pytest.mark.parametrize("who, never", ONE_WAY, ids=["stages-not-report-or-cli", "readers-not-train",
                                                       "model-tokenizer-not-data-or-train"])
def test_one_way_rules(who, never):
    # a package's `commands` module holds its verbs (DESIGN.md: the verb lives with the package that
    # owns it): command-line code, which may use the CLI's shared argument builders
    broken = {m: bad for m in MODULES if _under(m, *who) and not m.endswith(".commands")
              if (bad := {t: line for t, line in imports(m, module_level=False).items() if _under(t, *never)})}
    assert broken == {}, f"modules importing against the flow: {broken}"


def test_import_lmlab_and_the_cli_parser_leave_torch_unloaded():
    """`lmlab --help`, `lmlab presets`, `lmlab studies` and the refusal of a plain mistake answer
    before torch loads (torch alone takes seconds to import on a busy laptop)."""
    code = ("import sys; import lmlab; from lmlab.cli import build_parser, main; build_parser(); "
            "rc = [main(a) for a in (['presets'], ['studies'], ['train', 'no-such-preset'], ['no-such-verb'])]; "
            "print(rc, sorted(m for m in ('torch', 'transformers', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[0, 0, 2, 2] []"


# Identifiers that hold a registry's names where no config field does (a field's are its last part:
# model.mlp -> `mlp`). A comparison of one against a registered name is a choice made outside its registry.
HOLDERS = {"study.executor": {"executor"}, "study.sizes": {"size"}, "eval.task_kinds": {"kind"},
           "train.device": {"device"}, "studies": {"study"}, "data.source": {"kind"},
           "data.sources.generator": {"generator"}, "preset": {"preset"}}
# Comparisons that are not forks, each with its reason: (module, function) -> why.
NOT_FORKS = {
    ("lmlab.model.config", "qk_norm_name"): "'none' is the absence of a norm, which QK-norm cannot be",
    ("lmlab.model.head_loss", "compute_dtype"): "torch's device.type (autocast's vocabulary), not a train.device",
    ("lmlab.model.head_loss", "no_autocast"): "torch's device.type (autocast's vocabulary), not a train.device",
}


def _strings(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return set()


def _holder(node: ast.AST) -> str | None:
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None


def registry_forks() -> list[str]:
    """Comparisons of a registry-held value against one of its registered names, outside the module
    that fills the registry; a `require(...)` (a constraint between fields that the config checks
    before any component loads) is not a fork."""
    from lmlab.registry import all_registries

    found = []
    watched = []  # (registry, the identifiers holding its names, the modules that fill it, its names)
    for registry in all_registries().values():
        holders = set(HOLDERS.get(registry.name, set()))
        if registry.field:
            holders.add(registry.field.rsplit(".", 1)[-1])
        home = {m for entry in registry.values() for m in (type(entry).__module__, getattr(entry, "__module__", ""))}
        watched.append((registry, holders, home, set(registry)))
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            owner, inside_require = node, False
            while owner in parents and not isinstance(owner, (ast.FunctionDef, ast.AsyncFunctionDef)):
                owner = parents[owner]
                inside_require |= isinstance(owner, ast.Call) and _holder(owner.func) == "require"
            where = (name, getattr(owner, "name", ""))
            if inside_require or where in NOT_FORKS:
                continue
            for registry, holders, home, names in watched:
                if name in home:
                    continue
                if any(_holder(s) in holders and any(_strings(o) & names for o in sides if o is not s)
                       for s in sides):
                    found.append(f"{name}:{node.lineno} ({registry.name}): {ast.unparse(node)}")
    return sorted(set(found))


def test_no_choice_among_registered_names_outside_its_registry():
    """A registered component carries what callers need to know about it (`PARALLEL[p].distributed`,
    `DEVICES[d].available()`, `OPTIMIZERS[o].min_state_bytes`), so no caller tests its name."""
    assert registry_forks() == []


def test_the_fork_reader_sees_a_fork(tmp_path, monkeypatch):
    """Guard the check above against a reader that finds nothing."""
    fake = tmp_path / "fork.py"
    fake.write_text("def pick(cfg):\n    return 1 if cfg.train.optimizer == 'muon' else 2\n", encoding="utf-8")
    monkeypatch.setitem(MODULES, "lmlab.fake_fork", fake)
    assert registry_forks() == ["lmlab.fake_fork:2 (train.optimizer): cfg.train.optimizer == 'muon'"]
