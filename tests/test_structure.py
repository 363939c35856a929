"""The layout: the commands and the two network files at the root, what they share in the pop2jazz package, no
import circles, no command importing another; checkpoints written by earlier versions still load."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch

from conftest import ROOT
from pop2jazz.checkpoint import generator_from, load_checkpoint
from pop2jazz.spectrogram import Representation

FIXTURES = ROOT / "tests" / "fixtures"
PACKAGE = "pop2jazz"
NETWORKS = {"model_cyclegan", "model_pix2pix"}  # the project card's two network files, at the root
COMMANDS = {"audio_preprocessing", "train", "convert", "simple_gan", "evaluate", "app", "benchmark"}
# modules that must not reach the pretrained judges: what trains or chooses a model (the judges are judges only)
TRAINING = {"train", "simple_gan", f"{PACKAGE}.compute", f"{PACKAGE}.dataset", f"{PACKAGE}.epoch_outputs",
            f"{PACKAGE}.runs", f"{PACKAGE}.checkpoint", "model_cyclegan", "model_pix2pix"}


def project_modules() -> dict[str, Path]:
    """Every module of the project by its import name: the root's files and the package's (pop2jazz.x)."""
    modules = {path.stem: path for path in sorted(ROOT.glob("*.py"))}
    modules |= {f"{PACKAGE}.{path.stem}": path for path in sorted((ROOT / PACKAGE).glob("*.py"))
                if path.stem != "__init__"}
    return modules


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Project modules `path` imports anywhere in its code (at the top, in functions, under TYPE_CHECKING):
    `import pop2jazz.x`, `from pop2jazz.x import y` and `from pop2jazz import x` all name pop2jazz.x."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    name = path.stem if path.parent == ROOT else f"{PACKAGE}.{path.stem}"
    return found & modules - {name}


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, set(modules)) for name, path in modules.items()}


def reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module `start` imports, directly or through others."""
    seen, todo = set(), [start]
    while todo:
        for child in graph[todo.pop()] - seen:
            seen.add(child)
            todo.append(child)
    return seen


def is_script(path: Path) -> bool:
    """A file with `if __name__ == "__main__":`."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and \
                isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__":
            return True
    return False


def test_the_root_holds_the_commands_the_networks_and_the_package():
    assert {path.stem for path in ROOT.glob("*.py")} == COMMANDS | NETWORKS
    assert (ROOT / PACKAGE / "__init__.py").exists()
    assert all(is_script(ROOT / f"{name}.py") for name in COMMANDS)


def test_the_package_never_imports_a_command():
    graph = import_graph()
    offending = sorted((name, imported) for name, imported_set in graph.items() if name.startswith(PACKAGE)
                       for imported in imported_set & COMMANDS)
    assert offending == []


def test_each_command_imports_only_the_package_and_the_networks():
    graph = import_graph()
    offending = sorted((name, imported) for name in COMMANDS for imported in graph[name]
                       if not imported.startswith(f"{PACKAGE}.") and imported not in NETWORKS)
    assert offending == []


def test_no_import_cycles():
    graph = import_graph()
    state: dict[str, str] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for child in sorted(graph[node]):
            if state.get(child) == "open":
                cycles.append(trail[trail.index(child):] + [child])
            elif child not in state:
                visit(child, trail + [child])
        state[node] = "done"

    for name in graph:
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_the_graph_checks_can_fail():
    """The checks above see imports inside functions, both spellings of a package import, and a script."""
    modules = set(project_modules())
    assert "model_pix2pix" in imports_of(ROOT / PACKAGE / "checkpoint.py", modules)
    assert f"{PACKAGE}.compute" in imports_of(ROOT / "train.py", modules)  # `from pop2jazz import compute`
    assert f"{PACKAGE}.spectrogram" in reaches(import_graph(), "train")
    assert is_script(ROOT / "train.py") and not is_script(ROOT / PACKAGE / "dataset.py")


TAGGER = f"{PACKAGE}.tagger"
TAGGER_LOG = (f"{PACKAGE}.judge", "TransferRateLog")  # the one class in training's reach that may use the tagger


def tagger_imports(path: Path) -> list[tuple[str, ...]]:
    """Each import of pop2jazz.tagger in `path`, as the names of the classes and functions it sits in."""
    found = []

    def visit(node: ast.AST, trail: tuple[str, ...]) -> None:
        for child in ast.iter_child_nodes(node):
            names = set()
            if isinstance(child, ast.Import):
                names = {alias.name for alias in child.names}
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = {child.module} | {f"{child.module}.{alias.name}" for alias in child.names}
            if TAGGER in names:
                found.append(trail)
            inner = (*trail, child.name) if isinstance(child, (ast.ClassDef, ast.FunctionDef,
                                                                ast.AsyncFunctionDef)) else trail
            visit(child, inner)

    visit(ast.parse(path.read_text()), ())
    return found


def test_the_pretrained_tagger_is_a_judge_only():
    """Nothing in training may use the pretrained tagger (no loss, no discriminator features, no early stopping).

    The rule: (1) no module of TRAINING other than train.py reaches pop2jazz.tagger, directly or through others;
    (2) train.py reaches it only through pop2jazz.judge, whose only import of the tagger sits inside the class
    judge.TransferRateLog (the --eval-every log, which writes figures and decides nothing), and train.py takes
    nothing from judge but that class; (3) without that one import, train.py would not reach the tagger at all.
    evaluate.py, a judge itself, may import it freely."""
    graph = import_graph()
    modules = project_modules()
    assert sorted(name for name in TRAINING if TAGGER in reaches(graph, name)) == ["train"]
    judge, log_class = TAGGER_LOG
    assert tagger_imports(modules[judge]) and all(trail[:1] == (log_class,) for trail in tagger_imports(modules[judge]))
    importers = sorted(name for name, imported in graph.items() if TAGGER in imported)
    assert all(name not in TRAINING for name in importers), importers
    without_the_log = {name: imported - {TAGGER} if name == judge else imported for name, imported in graph.items()}
    assert TAGGER not in reaches(without_the_log, "train")
    taken = {alias.name for node in ast.walk(ast.parse(modules["train"].read_text()))
             if isinstance(node, ast.ImportFrom) and node.module == judge for alias in node.names}
    assert taken == {log_class}
    assert "tagger" not in modules["train"].read_text().replace("TransferRateLog", "")


def test_the_tagger_rule_can_fail(tmp_path):
    """tagger_imports sees an import in a function at the module's top level, which the rule above refuses."""
    module = tmp_path / "m.py"
    module.write_text("class TransferRateLog:\n    def f(self):\n        from pop2jazz.tagger import Tagger\n"
                      "def g():\n    import pop2jazz.tagger\n")
    assert tagger_imports(module) == [("TransferRateLog", "f"), ("g",)]


def test_a_checkpoint_written_before_the_move_still_loads_and_computes_the_same():
    state = load_checkpoint(FIXTURES / "cyclegan_format1.pt")
    assert Representation.from_dict(state["representation"]).chunk_frames == 128
    expected = json.loads((FIXTURES / "cyclegan_format1.json").read_text())["outputs"]
    torch.manual_seed(0)
    image = torch.rand(1, 1, 512, 128) * 2 - 1
    for direction, figures in expected.items():
        with torch.no_grad():
            output = generator_from(state, direction)(image)
        assert float(output.double().sum()) == pytest.approx(figures["sum"], abs=1e-3)
        torch.testing.assert_close(output[0, 0, ::64, ::16], torch.tensor(figures["grid"]), rtol=0, atol=1e-5)
