"""What the project depends on, declared once and installed consistently.

pyproject.toml declares every dependency with its tested lower bound (upper
bounds only for a known break, with the reason and the test that shows it);
requirements.txt (pip, `make test`) and environment.yml (conda) pin exactly
those floors; what is installed must lie inside the declared range.

``python tests/test_dependencies.py`` prints each declared package's pin, the
installed version and whether it lies in range (`make test-latest` shows it).
"""

import importlib.metadata
import pathlib
import re
import sys
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
# what d2l.torch 1.0.3 imports at run time (it is installed with --no-deps)
D2L_NEEDS = {"torch", "torchvision", "pandas", "requests", "scipy", "pillow",
             "matplotlib-inline", "ipython", "matplotlib", "numpy"}


def _declared() -> dict[str, Requirement]:
    """Every dependency pyproject.toml declares (runtime and extras), by canonical name."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    return {canonicalize_name(req.name): req for req in map(Requirement, specs)}


def _runtime() -> set[str]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    return {canonicalize_name(Requirement(spec).name) for spec in project["dependencies"]}


def _pip_requirements() -> set[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def _conda_pip_section() -> set[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("  - pip:") + 1
    return {re.sub(r"^\s*-\s*", "", line).strip() for line in lines[start:]
            if line.strip().startswith("-")}


def _pins() -> dict[str, str]:
    """requirements.txt as {canonical name: pinned version}."""
    pins = {}
    for line in _pip_requirements():
        name, _, version = line.partition("==")
        pins[canonicalize_name(name)] = version
    return pins


def _lower_bound(req: Requirement) -> str | None:
    floors = [spec.version for spec in req.specifier if spec.operator == ">="]
    return floors[0] if len(floors) == 1 else None


def _installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


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


def test_every_declared_dependency_has_one_lower_bound():
    missing = [str(req) for req in _declared().values() if _lower_bound(req) is None]
    assert not missing, f"declare a tested lower bound (>=) for {missing}"


def test_the_pins_are_exactly_the_declared_lower_bounds():
    """The pinned set `make test` installs is the tested lower end of every range."""
    declared, pins = _declared(), _pins()
    assert set(pins) == set(declared), (
        f"only pinned: {sorted(set(pins) - set(declared))}; "
        f"only declared: {sorted(set(declared) - set(pins))}")
    off = {name: (pins[name], str(req.specifier)) for name, req in declared.items()
           if pins[name] != _lower_bound(req)}
    assert not off, f"pin != declared lower bound: {off}"


def _unexplained_upper_bounds(pyproject_text: str) -> list[str]:
    """Dependency lines of ``pyproject_text`` with an upper bound (``<``, ``<=``, ``==``,
    ``~=``, ``!=``) but no ``# <reason>; tests/<file>.py::<test>`` naming an existing test."""
    problems = []
    for line in pyproject_text.splitlines():
        spec = re.match(r'\s*"([A-Za-z0-9_.\-]+(?:\[[^\]]*\])?\s*[<>=!~][^"]*)"', line)
        if not spec or all(s.operator == ">=" for s in Requirement(spec.group(1)).specifier):
            continue
        named = re.search(r"#\s*\S.*?\b(tests/[\w/]+\.py)::(\w+)", line)
        test_file = ROOT / named.group(1) if named else None
        if not (named and test_file.is_file()
                and f"def {named.group(2)}(" in test_file.read_text()):
            problems.append(line.strip())
    return problems


def test_every_upper_bound_gives_its_reason_and_the_test_that_shows_the_break():
    """An upper bound is a known break: its line says why and names the test that shows it."""
    assert not _unexplained_upper_bounds(PYPROJECT.read_text()), (
        "add '# <reason>; tests/<file>.py::<test>' to these lines")


def test_an_unexplained_upper_bound_is_caught():
    good = '    "numpy>=2.4.6,<3",  # 3.0 drops X; tests/test_dependencies.py::main\n'
    bad = '    "pandas>=3.1.1,<4",  # no test named\n    "scipy==1.17.1",\n'
    assert _unexplained_upper_bounds(good + '    "torch>=2.14.1",\n') == []
    assert _unexplained_upper_bounds(bad) == ['"pandas>=3.1.1,<4",  # no test named',
                                              '"scipy==1.17.1",']


@pytest.mark.parametrize("name", sorted(_declared()))
def test_the_installed_release_lies_in_the_declared_range(name):
    """E.g. a conda matplotlib older than the tested floor fails here, not as wrong pictures."""
    req, version = _declared()[name], _installed(name)
    if version is None:
        if name in _runtime():
            pytest.fail(f"{name} is not installed; the project needs {req}")
        pytest.skip(f"{name} (a front end or check) is not installed")
    assert req.specifier.contains(version, prereleases=True), (
        f"{name} {version} is installed, outside the range pyproject.toml declares: {req}")


def test_d2l_is_installed_without_its_pins_everywhere_it_is_mentioned():
    makefile = (ROOT / "Makefile").read_text()
    assert "D2L    := d2l==1.0.3" in makefile and "--no-deps $(D2L)" in makefile
    assert "pip install --no-deps d2l==1.0.3" in (ROOT / "environment.yml").read_text()
    assert "pip install --no-deps d2l==1.0.3" in (ROOT / "README.md").read_text()
    assert not any(line.startswith("d2l") for line in _pip_requirements())
    assert "d2l" not in _declared()
    assert _installed("d2l") == "1.0.3"


def test_d2l_runtime_needs_are_declared():
    assert D2L_NEEDS <= _runtime()


def test_ci_runs_the_portable_pass_and_the_newest_releases():
    makefile = (ROOT / "Makefile").read_text()
    portable = re.search(r"^PORTABLE \?= (.*)$", makefile, re.M).group(1).split()
    assert {"ATEN_CPU_CAPABILITY=default", "OMP_NUM_THREADS=1"} <= set(portable)
    test_recipe = makefile[makefile.index("\ntest:"):makefile.index("\ninstall:")]
    assert "nbval-portable" in test_recipe
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test\n" in ci and "make test-latest" in ci


def main() -> int:
    """Print each declared package's range, pin and installed version; 1 if one is off
    (outside its range, or a runtime need missing)."""
    pins, runtime, off = _pins(), _runtime(), 0
    print(f"{'package':<20} {'declared':<22} {'pinned':<12} installed")
    for name, req in sorted(_declared().items()):
        version = _installed(name)
        inside = version is not None and req.specifier.contains(version, prereleases=True)
        if version is None:
            note = "   <- MISSING" if name in runtime else "   (an extra: not installed)"
        else:
            note = "" if inside else "   <- OUTSIDE the declared range"
            note += " (newer than the pin)" if inside and version != pins.get(name) else ""
        off += (version is None and name in runtime) or (version is not None and not inside)
        print(f"{name:<20} {str(req.specifier):<22} {pins.get(name, '-'):<12} "
              f"{version or '-'}{note}")
    return 1 if off else 0


if __name__ == "__main__":
    sys.exit(main())
