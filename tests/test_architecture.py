"""The layout the README's "Where the code lives" map describes, enforced.

The teaching core stays small and self-contained; the package builds on it
without cycles; notebooks use only the core's public names.
"""

import ast
import json
import pathlib
import re

import attention_utils as au

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "attention_lab"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: pathlib.Path) -> set[str]:
    """Modules of this project that ``path`` imports."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return {name for name in names if name.split(".")[0] in ("attention_lab", "attention_utils")}


def test_the_teaching_core_is_small():
    assert len((ROOT / "attention_utils.py").read_text().splitlines()) <= 800


def test_the_teaching_core_imports_nothing_from_the_package_and_has_no_widgets():
    tree = ast.parse((ROOT / "attention_utils.py").read_text())
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names}
    modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not _imports(ROOT / "attention_utils.py")
    assert not {m for m in modules if m.startswith(("ipywidgets", "matplotlib.backends"))}
    defined = [node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)]
    assert not [name for name in defined if re.search("explorer|panel|png|bench|blit", name, re.I)]


def test_all_lists_exactly_the_public_names():
    public = {name for name, value in vars(au).items()
              if not name.startswith("_") and getattr(value, "__module__", None) == au.__name__}
    assert set(au.__all__) == public


def test_no_module_of_the_package_imports_one_that_imports_it_back():
    graph = {_module_name(path): _imports(path) for path in PACKAGE.rglob("*.py")}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = [module for module in graph if reaches(module, module, {module})]
    assert not cycles


def test_notebooks_use_only_the_public_names_of_the_core():
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        used = set(re.findall(r"\bau\.(\w+)", code))
        assert used <= set(au.__all__), f"{path.name} uses {sorted(used - set(au.__all__))}"


def test_every_package_module_has_a_test_module_beside_the_layout():
    """tests/attention_lab mirrors attention_lab/: one test module per module."""
    missing = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py":
            continue
        relative = path.relative_to(PACKAGE)
        test = ROOT / "tests" / "attention_lab" / relative.parent / f"test_{relative.name}"
        if not test.exists():
            missing.append(str(relative))
    assert not missing
