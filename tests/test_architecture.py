"""The package's shape, read from its source files: no import cycles, no private names in
``__all__``, no references to modules that do not exist, no option nothing reads."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re
from pathlib import Path

import networkx as nx
import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SOURCE / "pypaddle"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}


def imported_modules(name: str, tree: ast.Module) -> set[str]:
    """The pypaddle modules ``name`` imports, at module level, inside functions or for
    annotations only (under ``TYPE_CHECKING``: a cycle there is still two modules that
    each need the other).

    ``from package import submodule`` counts as importing the submodule only;
    ``from module import name`` as importing the module.
    """
    is_package = MODULES[name].name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            submodules = [f"{module}.{alias.name}" for alias in node.names]
            if all(submodule in MODULES for submodule in submodules):
                found.update(submodules)
            else:
                found.add(module)
                found.update(submodule for submodule in submodules if submodule in MODULES)
    return {module for module in found if module.split(".")[0] == "pypaddle"}


def import_graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(MODULES)
    for name, tree in TREES.items():
        graph.add_edges_from((name, target) for target in imported_modules(name, tree))
    return graph


class TestImports:
    def test_the_graph_sees_the_imports(self):
        graph = import_graph()
        assert graph.has_edge("pypaddle.experiments.run", "pypaddle.experiments.engine")
        # Inside a function, and a submodule imported from its package.
        assert graph.has_edge("pypaddle.experiments.engine", "pypaddle.experiments.plots")
        assert graph.has_edge("pypaddle.experiments.config", "pypaddle.experiments.methods")
        assert not graph.has_edge("pypaddle.experiments.config", "pypaddle.experiments")

    def test_every_import_names_a_module_that_exists(self):
        missing = {
            (name, target)
            for name, tree in TREES.items()
            for target in imported_modules(name, tree)
            if target not in MODULES
        }
        assert missing == set()

    def test_no_cycle(self):
        cycles = sorted(nx.simple_cycles(import_graph()), key=len)
        assert cycles == []

    def test_a_cycle_would_be_found(self):
        graph = import_graph()
        graph.add_edge("pypaddle.experiments.distributed", "pypaddle.experiments.run")
        assert not nx.is_directed_acyclic_graph(graph)


def all_names(tree: ast.Module) -> list[str]:
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(target, ast.Name) and target.id == "__all__" for target in targets):
            return list(ast.literal_eval(node.value))
    return []


def test_no_private_name_in_any_all():
    private = {
        (name, exported)
        for name, tree in TREES.items()
        for exported in all_names(tree)
        if exported.startswith("_") and exported != "__version__"
    }
    assert private == set()


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_name_in_all_exists(name):
    if name.endswith("__main__"):
        return
    module = importlib.import_module(name)
    assert [exported for exported in all_names(TREES[name]) if not hasattr(module, exported)] == []


DOTTED = re.compile(r"\bpypaddle(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def resolves(reference: str) -> bool:
    """Whether ``pypaddle.a.b.c`` is a module, or attributes of the longest module prefix."""
    parts = reference.split(".")
    for end in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        for attribute in parts[end:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def test_every_dotted_reference_resolves():
    """Docstrings, comments and messages name only modules and objects that exist."""
    texts = [path.read_text() for path in MODULES.values()]
    texts.append((SOURCE.parent / "README.md").read_text())
    references = {match for text in texts for match in DOTTED.findall(text)}
    assert len(references) > 50
    assert sorted(reference for reference in references if not resolves(reference)) == []


def option_classes() -> set[type]:
    from pypaddle.experiments import config, sweep
    from pypaddle.experiments.registry import DATA, METHODS, MODELS

    classes = {config.TrainingOptions, config.EvaluationOptions}
    classes.update(
        value
        for module in (config, sweep)
        for value in vars(module).values()
        if dataclasses.is_dataclass(value) and value.__name__.endswith(("Options", "TopLevel"))
    )
    for registry in (DATA, METHODS, MODELS):
        classes.update(registry.get(name, "x").options for name in registry.names())
    return classes


def attribute_reads() -> set[str]:
    return {
        node.attr
        for tree in TREES.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load)
    }


def test_every_option_field_is_read():
    reads = attribute_reads()
    classes = option_classes()
    assert len(classes) >= 15
    unread = {
        (cls.__name__, field.name)
        for cls in classes
        for field in dataclasses.fields(cls)
        if field.name not in reads
    }
    assert unread == set()


def test_every_option_constraint_is_read():
    """Each key ``option()`` stores in a field's metadata is read when a table is checked."""
    from pypaddle.experiments.options import option

    stored = set(option(0).metadata)
    tree = TREES["pypaddle.experiments.options"]
    read = {
        node.slice.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
    } | {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    assert stored == {"path", "minimum", "maximum", "above", "below", "choices", "check", "help"}
    assert stored - read == set()
