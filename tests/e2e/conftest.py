"""Fixtures of the browser test: one Chromium, one server per front end, for the whole session.

Front ends: ``--front-ends jupyterlab,notebook7`` (the default: both; see
``browser.FRONT_ENDS``); a front end whose package is missing is skipped, or
fails where a browser is required (CI).
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
    parser.addoption("--front-ends", default=",".join(browser.FRONT_ENDS),
                     help="comma-separated front ends to drive (default: all of "
                          f"{', '.join(browser.FRONT_ENDS)})")


def _notebook_dir(config):
    return browser.notebook_dir(config.getoption("notebooks", default=None))


def _front_ends(config) -> list[str]:
    names = [name.strip() for name in config.getoption("front_ends").split(",") if name.strip()]
    unknown = sorted(set(names) - set(browser.FRONT_ENDS))
    if unknown:
        raise pytest.UsageError(f"unknown front end(s) {unknown}; "
                                f"known: {list(browser.FRONT_ENDS)}")
    return names


def pytest_generate_tests(metafunc):
    if "notebook" in metafunc.fixturenames:
        names = browser.list_notebooks(_notebook_dir(metafunc.config))
        metafunc.parametrize("notebook", names, ids=names)
    if "server" in metafunc.fixturenames:  # session-scoped: one server per front end
        names = _front_ends(metafunc.config)
        metafunc.parametrize("server", names, ids=names, indirect=True, scope="session")


@pytest.fixture(scope="session")
def server(request):
    """The front end's server (``request.param``: a key of ``browser.FRONT_ENDS``)."""
    browser.require_chromium()
    front_end = browser.FRONT_ENDS[request.param]
    reason = browser.missing_front_end(front_end)
    if reason is not None:
        if browser.browser_required():
            pytest.fail(f"{browser.REQUIRE_ENV}=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    with browser.jupyter_server(_notebook_dir(request.config), front_end.name) as instance:
        yield instance


@pytest.fixture(scope="session")
def chromium():
    browser.require_chromium()
    with browser.launch_browser() as instance:
        yield instance


@pytest.fixture
def page(chromium, server):
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()
        server.shutdown_kernels()


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
