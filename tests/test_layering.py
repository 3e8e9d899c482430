"""Layering is checked, not hoped for: the core imports no Qt or torch, inference no Qt, the GUI no torch."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "app": {"PyQt6", "torch"},
    "inference": {"PyQt6"},
    "ui": {"torch"},
}


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_folder_never_imports_forbidden_packages(folder):
    offenders = []
    for path in sorted((REPO / folder).rglob("*.py")):
        bad = _imported_roots(path) & FORBIDDEN[folder]
        if bad:
            offenders.append(f"{path.relative_to(REPO)} imports {sorted(bad)}")
    assert not offenders, "\n".join(offenders)


def test_viewer_runtime_path_does_not_import_torch():
    """Starting the viewer with the ONNX backend must not pay torch's 2.5 s import."""
    code = (
        "import sys, polypview.cli, polypview.run, polypview.inference.runtime.engine, polypview.overlay\n"
        "import polypview.pipeline, polypview.sources, polypview.recorder\n"
        "print('torch' in sys.modules, 'PyQt6' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_torch_only_in_the_networks_training_and_the_torch_backend():
    """The runtime the viewer needs is torch-free except for the one backend module that runs checkpoints."""
    allowed = ("inference/models/", "inference/training/", "inference/runtime/backend_torch.py")
    users = sorted(str(path.relative_to(REPO)) for folder in FORBIDDEN for path in (REPO / folder).rglob("*.py")
                   if "torch" in _imported_roots(path))
    assert users, "no module imports torch: the check is looking in the wrong place"
    offenders = [u for u in users if not u.startswith(allowed)]
    assert not offenders, offenders


def test_runtime_never_imports_training():
    """inference/runtime is what the viewer runs; training, evaluation and export build on it, not the reverse."""
    graph = _module_imports()
    runtime = [m for m in graph if m.startswith("polypview.inference.runtime")]
    assert len(runtime) >= 5
    back = [f"{m} -> {t}" for m in runtime for t in graph[m] if t.startswith("polypview.inference.training")]
    assert not back, "\n".join(back)


def test_only_the_batch_driver_imports_ray():
    """Ray is the batch extra: the viewer, training and the GUI never need it."""
    users = sorted(str(path.relative_to(REPO)) for folder in FORBIDDEN for path in (REPO / folder).rglob("*.py")
                   if "ray" in _imported_roots(path))
    assert users == ["app/batchrun.py"]


def _module_imports() -> dict[str, set[str]]:
    """Every polypview module -> the polypview modules it imports anywhere (top level or inside functions)."""
    packages = {"app": "polypview", "inference": "polypview.inference", "ui": "polypview.ui", "assets": "polypview.assets"}
    files = {}
    for folder, package in packages.items():
        for path in (REPO / folder).rglob("*.py"):
            parts = [p for p in path.relative_to(REPO / folder).with_suffix("").parts if p != "__init__"]
            files[".".join([package, *parts])] = path
    graph = {}
    for module, path in files.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("polypview"):
                found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in files else node.module
                          for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("polypview")}
        unresolved = found - set(files)
        assert not unresolved, f"{module} imports modules that do not exist: {sorted(unresolved)}"
        graph[module] = found - {module}
    return graph


def test_no_import_cycles_even_through_imports_inside_functions():
    graph = _module_imports()
    cycles = []

    def visit(module, path):
        for target in sorted(graph[module]):
            if target in path:
                cycles.append(path[path.index(target):] + [target])
            elif target not in done:
                visit(target, path + [target])
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_imports_only_run_down_the_layers():
    """ui -> core (app) and inference; never back up into the window. The entry point (run) is the one
    place that opens the window, and the GUI probe of the bench runs in its own process."""
    graph = _module_imports()
    upward = [f"{m} -> {t}" for m, targets in graph.items() for t in targets
              if t.startswith("polypview.ui") and not m.startswith("polypview.ui") and m != "polypview.run"]
    assert not upward, "\n".join(upward)
