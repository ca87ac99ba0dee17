"""Fixtures of the browser test: one JupyterLab and one Chromium for the whole session.

Notebook directory: ``--notebooks DIR``, else $ATTENTION_LAB_NOTEBOOKS, else notebooks/.
Screenshots go to $ATTENTION_LAB_SCREENSHOTS, else e2e-screenshots/ (git-ignored);
the folder is printed at the end of the session.
"""

from __future__ import annotations

import browser
import pytest


def pytest_addoption(parser):
    parser.addoption("--notebooks", default=None,
                     help="directory of the notebooks the browser test opens (default: notebooks/)")


def _notebook_dir(config):
    return browser.notebook_dir(config.getoption("notebooks", default=None))


def pytest_generate_tests(metafunc):
    if "notebook" in metafunc.fixturenames:
        names = browser.list_notebooks(_notebook_dir(metafunc.config))
        metafunc.parametrize("notebook", names, ids=names)


@pytest.fixture(scope="session")
def lab(request):
    browser.require_chromium()
    with browser.jupyterlab(_notebook_dir(request.config)) as server:
        yield server


@pytest.fixture(scope="session")
def chromium():
    browser.require_chromium()
    with browser.launch_browser() as instance:
        yield instance


@pytest.fixture
def page(chromium, lab):
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()
        lab.shutdown_kernels()


@pytest.fixture(scope="session")
def screenshots(request):
    folder = browser.screenshot_dir()
    folder.mkdir(parents=True, exist_ok=True)
    request.config._attention_lab_screenshots = folder
    return folder


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    folder = getattr(config, "_attention_lab_screenshots", None)
    if folder is not None:
        terminalreporter.write_sep("-", "browser test screenshots")
        terminalreporter.write_line(f"explorer screenshots (before/after each move): {folder}")
