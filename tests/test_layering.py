"""The package's layers, checked on its source: no module imports from a layer above its own,
no two modules import each other (directly or round a loop), and inference does not reach into
training.

Bottom to top: the neutral vocabulary (errors, the paper's names and numbers, random streams,
devices); data, models and evaluation; training, and inference beside it (using trained weights
needs none of training); the commands and figures. Imports inside functions count too: a lazy
import upward is still a dependency upward.
"""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "gluon_tricks"

# The first name after `gluon_tricks.` -> its layer. A new module must be placed here.
LAYERS = {
    "": 0, "errors": 0, "paper": 0, "streams": 0, "files": 0, "provenance": 0, "devices": 0,
    "data": 1, "models": 1, "evaluation": 1,
    "training": 2, "inference": 2, "detection": 2, "segmentation": 2,
    "figures": 3, "cli": 3, "__main__": 3, "demo": 3, "evaluate": 3, "export": 3, "predict": 3,
    "bench_train": 3, "detect": 3, "segment": 3,
}


def _area(module_name):
    """'gluon_tricks.training.loop' -> 'training'; 'gluon_tricks' -> ''."""
    parts = module_name.split(".")
    return parts[1] if len(parts) > 1 else ""


def _module_name(path):
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path):
    """Every gluon_tricks module `path` imports, wherever in the file the import stands."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "gluon_tricks")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "gluon_tricks":
                found.add(node.module)
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    unplaced = sorted({_area(_module_name(p)) for p in SOURCES} - set(LAYERS))
    assert not unplaced, "place these in LAYERS (tests/test_layering.py): %s" % unplaced


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_no_import_from_a_layer_above(path):
    own = LAYERS.get(_area(_module_name(path)))
    if own is None:
        pytest.skip("unplaced (reported by test_every_module_has_a_layer)")
    upward = sorted(m for m in _imports(path) if LAYERS.get(_area(m), -1) > own)
    assert not upward, "%s (layer %d) imports from above: %s" % (path.name, own, upward)


def test_the_check_sees_an_upward_import(tmp_path):
    """The parser finds lazy imports inside functions, the kind this test exists for."""
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from gluon_tricks.figures.tricks import tricks_of\n"
                      "import gluon_tricks.cli\n")
    assert _imports(sample) == {"gluon_tricks.figures.tricks", "gluon_tricks.cli"}


MODULES = {_module_name(p): p for p in SOURCES}


def _import_graph(modules):
    """{module: the modules of `modules` it imports}; `from pkg.mod import name` counts as pkg.mod,
    `from pkg import name` as pkg (whose __init__ runs)."""
    def owner(name):
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name
    return {name: {owner(m) for m in _imports(path)} & set(modules) - {name}
            for name, path in modules.items()}


def _cycles(graph):
    """The groups of modules that import each other round a loop (strongly connected, > 1)."""
    index, low, stack, found = {}, {}, [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = stack[stack.index(node):]
            del stack[stack.index(node):]
            if len(group) > 1:
                found.append(sorted(group))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_round_a_loop():
    assert _cycles(_import_graph(MODULES)) == []


def test_the_cycle_check_sees_a_loop_through_lazy_imports(tmp_path):
    """A loop through imports inside functions (as export <-> predict was) is found."""
    for name, other in (("a", "b"), ("b", "c"), ("c", "a")):
        (tmp_path / (name + ".py")).write_text("def f():\n    from gluon_tricks.%s import f\n"
                                               % other)
    modules = {"gluon_tricks." + n: tmp_path / (n + ".py") for n in "abc"}
    assert _cycles(_import_graph(modules)) == [["gluon_tricks.a", "gluon_tricks.b",
                                                "gluon_tricks.c"]]


@pytest.mark.parametrize("name", sorted(m for m in MODULES if _area(m) == "inference"))
def test_inference_does_not_import_training(name):
    assert not [m for m in _imports(MODULES[name]) if _area(m) == "training"]


def test_the_commands_that_use_weights_go_through_inference():
    for command in ("evaluate", "export", "predict"):
        imported = _imports(MODULES["gluon_tricks." + command])
        assert any(_area(m) == "inference" for m in imported), command
        assert not [m for m in imported if _area(m) == "training"], command
