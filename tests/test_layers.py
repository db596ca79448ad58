"""The layers as the folders say (docs/design.md, "Layers"): toppo.specs (what a run is, no
torch) <- toppo.algo (what decides a logged number) <- toppo.harness (what keeps a run) <- the
trainer (toppo.trainer, toppo.train); analysis reads toppo.specs alone. Checked twice: every
import statement of each layer, lazy ones included, and what importing each analysis and
spec module loads in a fresh interpreter."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# layer -> the layers (of this project) it may import; "torch": the package itself
MAY_IMPORT = {
    "toppo.specs": {"toppo.specs"},
    "toppo.algo": {"toppo.specs", "toppo.algo", "torch"},
    "toppo.harness": {"toppo.specs", "toppo.algo", "toppo.harness", "torch"},
    "analysis": {"toppo.specs", "analysis"},
}
LAYERS = (*MAY_IMPORT, "toppo.trainer", "toppo.train", "toppo", "torch")


def layer_of(module: str) -> str | None:
    """The layer a module belongs to (the longest package prefix), None: not ours nor torch."""
    for layer in sorted(LAYERS, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import statement in ``path``, those inside functions too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def back_arrows(layer: str, root: Path = REPO) -> list[str]:
    folder = root.joinpath(*layer.split("."))
    return [f"{path.relative_to(root)}:{line} imports {module}"
            for path in sorted(folder.rglob("*.py")) for line, module in imports(path)
            if (to := layer_of(module)) is not None and to not in MAY_IMPORT[layer]]


@pytest.mark.parametrize("layer", MAY_IMPORT)
def test_no_layer_imports_one_above_it(layer):
    assert back_arrows(layer) == []


def test_a_back_arrow_is_found(tmp_path):
    (tmp_path / "analysis").mkdir()
    (tmp_path / "analysis" / "bad.py").write_text(
        "from toppo.specs import config\n\ndef f():\n    from toppo.harness import io\n")
    assert back_arrows("analysis", tmp_path) == ["analysis/bad.py:4 imports toppo.harness.io"]


# In one fresh interpreter: the modules each import newly loads of the heavy ones, in this
# order; the last import is a control that must load torch.
PROBE = """
import importlib, json, pkgutil, sys
import analysis, toppo.specs
HEAVY = ("torch", "toppo.algo", "toppo.harness", "toppo.trainer", "toppo.train")
def heavy():
    return {m for m in sys.modules if m.split(".")[0] == "torch" or m.startswith(HEAVY)}
names = ["toppo", "toppo.specs", *(f"toppo.specs.{m.name}" for m in pkgutil.iter_modules(toppo.specs.__path__)),
         "analysis", *(f"analysis.{m.name}" for m in pkgutil.iter_modules(analysis.__path__)),
         "toppo.algo.ppo"]
loaded, before = {}, heavy()
for name in names:
    importlib.import_module(name)
    loaded[name], before = sorted({m.split(".")[0] if m.startswith("torch") else m
                                   for m in heavy() - before}), heavy()
print(json.dumps(loaded))
"""


def test_importing_analysis_or_the_spec_loads_no_torch_and_no_trainer():
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True,
                         text=True, check=True, timeout=600).stdout
    loaded = json.loads(out)
    control = loaded.pop("toppo.algo.ppo")
    assert "torch" in control  # the probe sees an import of torch
    assert any(name.startswith("analysis.") for name in loaded) and "toppo.specs.config" in loaded
    assert {name: mods for name, mods in loaded.items() if mods} == {}


def test_the_toppo_package_itself_imports_nothing():
    code = ("import sys; before = set(sys.modules); import toppo; "
            "print(sorted(set(sys.modules) - before))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True, timeout=60).stdout
    assert out.strip() == "['toppo']"
