"""requirements.txt (pip route) and environment.yml (conda route) list the same packages."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _pip_requirements() -> set[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def _conda_pip_section() -> set[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("  - pip:") + 1
    return {re.sub(r"^\s*-\s*", "", line).strip() for line in lines[start:]
            if line.strip().startswith("-")}


def test_requirements_and_environment_list_the_same_packages():
    assert _pip_requirements() == _conda_pip_section()


def test_conda_environment_is_named_and_uses_python_311():
    text = (ROOT / "environment.yml").read_text()
    assert "name: attention-lab" in text
    assert "  - python=3.11" in text


def test_every_requirement_is_pinned_and_torch_comes_from_the_local_wheels():
    requirements = _pip_requirements()
    assert all("==" in line for line in requirements), requirements
    assert {"torch==2.14.1", "torchvision==0.29.1"} <= requirements


def test_d2l_is_installed_without_its_pins_everywhere_it_is_mentioned():
    makefile = (ROOT / "Makefile").read_text()
    assert "D2L    := d2l==1.0.3" in makefile and "--no-deps $(D2L)" in makefile
    assert "pip install --no-deps d2l==1.0.3" in (ROOT / "environment.yml").read_text()
    assert "pip install --no-deps d2l==1.0.3" in (ROOT / "README.md").read_text()
    assert not any(line.startswith("d2l") for line in _pip_requirements())


def test_d2l_runtime_needs_are_listed():
    names = {line.split("==")[0].lower() for line in _pip_requirements()}
    needs = {"torchvision", "pandas", "requests", "scipy", "pillow", "matplotlib-inline",
             "ipython", "matplotlib", "numpy"}
    assert needs <= names
