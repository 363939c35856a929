"""The layout: one room per idea, no import circles, scripts import rooms and never other scripts; checkpoints
written by earlier versions still load."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch

from checkpoint import generator_from, load_checkpoint
from conftest import ROOT
from spectrogram import Representation

FIXTURES = ROOT / "tests" / "fixtures"
# (importer, script) pairs allowed, with the reason
ALLOWED_SCRIPT_IMPORTS = {
    ("benchmark.py", "audio_preprocessing"): "times preprocess() in-process: a child's interpreter start-up (3 s) "
                                             "would swamp the 0.3 s it measures",
}


def project_modules() -> dict[str, Path]:
    return {path.stem: path for path in sorted(ROOT.glob("*.py"))}


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Project modules `path` imports anywhere in its code (at the top, in functions, under TYPE_CHECKING)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & modules - {path.stem}


def is_script(path: Path) -> bool:
    """A file with `if __name__ == "__main__":`."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and \
                isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__":
            return True
    return False


def test_no_module_imports_a_script():
    modules = project_modules()
    scripts = {name for name, path in modules.items() if is_script(path)}
    assert {"train", "convert", "evaluate", "audio_preprocessing", "simple_gan", "benchmark"} <= scripts
    offending = [(path.name, imported) for name, path in modules.items()
                 for imported in sorted(imports_of(path, set(modules)) & scripts)
                 if (path.name, imported) not in ALLOWED_SCRIPT_IMPORTS]
    assert offending == []


def test_no_import_cycles():
    modules = project_modules()
    graph = {name: imports_of(path, set(modules)) for name, path in modules.items()}
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
    """The checks above see imports inside functions and recognise a script."""
    modules = set(project_modules())
    assert "model_pix2pix" in imports_of(ROOT / "checkpoint.py", modules)
    assert is_script(ROOT / "train.py") and not is_script(ROOT / "data.py")


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
