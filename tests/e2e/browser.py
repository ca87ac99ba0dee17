"""Shared machinery of the browser tests: find Chromium, start a Jupyter front end, drive explorers.

``python tests/e2e/browser.py --check`` (used by ``make test``) exits 0 when a
Chromium/Chrome executable is found and 1 when none is, so a learner without a
browser gets a skip message.  With ``ATTENTION_LAB_REQUIRE_BROWSER=1`` (CI) it
exits 0 even without one, so ``make e2e`` runs and fails loudly instead.

Two front ends are driven, both built from JupyterLab's components (the same
notebook panel, menus and widget manager): JupyterLab (``jupyter lab``) and
Jupyter Notebook 7 (``jupyter notebook``, package ``notebook``); see
:data:`FRONT_ENDS`.  Nothing in the repository is modified: the notebooks are
copied, outputs cleared, into a temporary directory that a throw-away server
serves, with its own config, settings and workspace directories.  Chromium is driven by the
``playwright`` package through ``executable_path`` (never ``playwright install``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REQUIRE_ENV = "ATTENTION_LAB_REQUIRE_BROWSER"
NOTEBOOKS_ENV = "ATTENTION_LAB_NOTEBOOKS"
SCREENSHOTS_ENV = "ATTENTION_LAB_SCREENSHOTS"
CHROME_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
CHROME_APPS = (
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
)
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]
# JupyterLab user settings for the throw-away settings directory: no news/update
# toasts over the notebook, and every cell attached to the DOM (no windowing),
# so every explorer of a long notebook can be found.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


# ----------------------------------------------------------------------------
# Chromium
# ----------------------------------------------------------------------------


def browser_required() -> bool:
    """True where a missing browser is a failure (CI sets ATTENTION_LAB_REQUIRE_BROWSER=1)."""
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable: $CHROME_PATH first, then the usual names."""
    candidates = [os.environ.get("CHROME_PATH", "")]
    candidates += [shutil.which(name) or "" for name in CHROME_NAMES]
    candidates += list(CHROME_APPS)
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def missing_browser_message() -> str:
    return ("no Chromium/Chrome executable found (looked at $CHROME_PATH and "
            f"{', '.join(CHROME_NAMES)}). Install one (Debian/Ubuntu: "
            "`apt-get install chromium`) or point CHROME_PATH at it.")


def require_chromium() -> str:
    """The Chromium path for a pytest test: skips without one, fails where CI requires one."""
    import pytest

    path = find_chromium()
    if path is None:
        if browser_required():
            pytest.fail(f"{REQUIRE_ENV}=1 but {missing_browser_message()}", pytrace=False)
        pytest.skip(missing_browser_message())
    return path


@contextlib.contextmanager
def launch_browser(headless: bool = True):
    """Chromium through playwright; yields a playwright ``Browser``."""
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    if executable is None:
        raise RuntimeError(missing_browser_message())
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=headless,
                                     args=CHROME_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


# ----------------------------------------------------------------------------
# A Jupyter server on a copy of the notebooks
# ----------------------------------------------------------------------------


def notebook_dir(option: str | None = None) -> Path:
    """The notebooks under test: ``option``, else $ATTENTION_LAB_NOTEBOOKS, else notebooks/."""
    return Path(option or os.environ.get(NOTEBOOKS_ENV) or REPO / "notebooks").resolve()


def list_notebooks(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.glob("*.ipynb"))


def screenshot_dir() -> Path:
    return Path(os.environ.get(SCREENSHOTS_ENV) or REPO / "e2e-screenshots").resolve()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def copy_notebooks(source: Path, dest: Path) -> None:
    """Copy ``source`` to ``dest`` with every notebook's outputs and widget state cleared."""
    import nbformat

    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(
        ".ipynb_checkpoints", "__pycache__", ".pytest_cache"))
    for path in dest.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nb.metadata.pop("widgets", None)
        nbformat.write(nb, path)


@dataclass(frozen=True)
class FrontEnd:
    """How to start one Jupyter front end and where it shows a notebook."""

    name: str  # as in test ids and screenshot folders
    module: str  # run as ``python -m <module>``; also the package that must be installed
    app: str  # its application class, for the settings/workspace/expose options
    notebook_path: str  # URL path of a notebook, ``{}`` for its name
    package: str  # what to pip-install when it is missing
    # Whether an arrow key reaches a focused slider.  Notebook 7 (7.6.3) runs its
    # command-mode shortcut "move to the next/previous heading" instead (the keydown is
    # taken before the slider sees it), so there a slider is dragged with the mouse.
    slider_keys: bool = True


FRONT_ENDS = {
    "jupyterlab": FrontEnd("jupyterlab", "jupyterlab", "LabApp", "lab/tree/{}?reset",
                           "jupyterlab"),
    "notebook7": FrontEnd("notebook7", "notebook", "JupyterNotebookApp", "notebooks/{}",
                          "notebook>=7", slider_keys=False),
}


def missing_front_end(front_end: FrontEnd) -> str | None:
    """Why ``front_end`` cannot start here (its package is not installed), or None."""
    if importlib.util.find_spec(front_end.module) is None:
        return (f"{front_end.name}: the `{front_end.module}` package is not installed "
                f"(pip install '{front_end.package}')")
    return None


class JupyterServer:
    """A Jupyter server (JupyterLab or Notebook 7) on 127.0.0.1, no token, serving a cleared
    copy of ``source``."""

    def __init__(self, source: Path, tmp: Path, front_end: str = "jupyterlab"):
        self.front_end = FRONT_ENDS[front_end]
        self.root = tmp / "notebooks"
        copy_notebooks(source, self.root)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"{front_end}.log"
        settings = tmp / "settings"
        for name, values in LAB_SETTINGS.items():
            (settings / name).parent.mkdir(parents=True, exist_ok=True)
            (settings / name).write_text(json.dumps(values))
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / "config"),
                   JUPYTERLAB_SETTINGS_DIR=str(settings),
                   JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
                   JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), IPYTHONDIR=str(tmp / "ipython"),
                   JUPYTER_PLATFORM_DIRS="1")
        app = self.front_end.app
        cmd = [sys.executable, "-m", self.front_end.module, "--no-browser",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
               "--ServerApp.port_retries=0", "--ServerApp.open_browser=False",
               "--IdentityProvider.token=", "--ServerApp.password=",
               "--ServerApp.disable_check_xsrf=True", f"--ServerApp.root_dir={self.root}",
               f"--{app}.user_settings_dir={settings}",
               f"--{app}.workspaces_dir={tmp / 'workspaces'}",
               f"--{app}.expose_app_in_browser=True"]
        if hasattr(os, "getuid") and os.getuid() == 0:
            cmd.append("--allow-root")
        self._log = open(self.log_path, "w")  # noqa: SIM115  (closed in stop())
        self.process = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        self._wait_until_up()

    def _wait_until_up(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.front_end.name} exited early:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/api/status", timeout=2) as response:
                    if response.status == 200:
                        return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"{self.front_end.name} did not answer within {timeout:.0f} s:\n"
                           f"{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/{self.front_end.notebook_path.format(name)}"

    def shutdown_kernels(self) -> None:
        """Stop every running kernel (after each notebook, to keep memory low)."""
        with urllib.request.urlopen(f"{self.url}/api/sessions", timeout=10) as response:
            sessions = json.load(response)
        for session in sessions:
            request = urllib.request.Request(f"{self.url}/api/sessions/{session['id']}",
                                             method="DELETE")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(request, timeout=30).close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


JupyterLab = JupyterServer  # the name bench_ui.py and older scripts use


@contextlib.contextmanager
def jupyter_server(source: Path, front_end: str = "jupyterlab") -> Iterator[JupyterServer]:
    """A throw-away ``front_end`` server (a key of :data:`FRONT_ENDS`) on a copy of ``source``."""
    with tempfile.TemporaryDirectory(prefix=f"attention-lab-{front_end}-") as tmp:
        server = JupyterServer(source, Path(tmp), front_end)
        try:
            yield server
        finally:
            server.stop()


def jupyterlab(source: Path):
    """A throw-away JupyterLab on a copy of ``source`` (see :func:`jupyter_server`)."""
    return jupyter_server(source, "jupyterlab")


# ----------------------------------------------------------------------------
# Driving a notebook in the page
# ----------------------------------------------------------------------------

PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
ERROR_OUTPUTS = (f"{PANEL} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
                 ":has-text('Traceback'), "
                 f"{PANEL} .jp-RenderedText[data-mime-type='application/vnd.jupyter.error']")
# An explorer is explorer_panel's VBox: its figure is a direct-child img.widget-image.
EXPLORERS = f"{PANEL} .widget-vbox:has(> .widget-image)"

# Page-side state of the visible notebook: the model says which code cells ran.
_NOTEBOOK_STATE_JS = """(sel) => {
  const panel = document.querySelector(sel);
  if (!panel) return null;
  const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  const app = window.jupyterapp;
  const widget = app && app.shell.currentWidget;
  const cells = [];
  if (widget && widget.content && widget.content.model) {
    for (const cell of widget.content.model.cells) {
      if (cell.type !== 'code') continue;
      cells.push({source: cell.sharedModel.getSource().trim().length > 0,
                  count: cell.executionCount, state: cell.executionState || null});
    }
  }
  const pending = [...panel.querySelectorAll('.jp-InputPrompt')]
      .filter(p => p.textContent.includes('*')).length;
  return {status: indicator ? indicator.getAttribute('data-status') : null,
          session: widget && widget.sessionContext ?
                   widget.sessionContext.kernelDisplayStatus : null,
          cells, pending};
}"""


def notebook_state(page) -> dict | None:
    return page.evaluate(_NOTEBOOK_STATE_JS, PANEL)


def open_notebook(page, server: JupyterServer, name: str, timeout: float = 90.0) -> None:
    """Open ``name`` in ``server``'s front end and wait until its kernel is idle."""
    page.goto(server.notebook_url(name))
    page.wait_for_selector(f"{PANEL} .jp-Notebook", timeout=timeout * 1e3)
    wait_idle(page, timeout, settle=0.5)


def wait_idle(page, timeout: float, settle: float = 1.0) -> dict:
    """Wait until the visible notebook's kernel is idle with no cell pending, for ``settle`` s."""
    deadline = time.monotonic() + timeout
    since = None
    state = None
    while time.monotonic() < deadline:
        dialog = page.query_selector(".jp-Dialog")
        if dialog is not None:
            raise AssertionError(f"the front end shows a dialog: {dialog.inner_text()[:500]}")
        state = notebook_state(page)
        idle = (state is not None and state["status"] == "idle" and state["pending"] == 0
                and state["session"] == "idle")
        if idle:
            since = since or time.monotonic()
            if time.monotonic() - since >= settle:
                return state
        else:
            since = None
        time.sleep(0.2)
    raise AssertionError(f"the kernel did not become idle within {timeout:.0f} s: {state}")


def run_all(page, timeout: float | None = None) -> dict:
    """Run > Run All Cells, then wait for idle and for every non-empty code cell to have run.

    Returns the final notebook state.  Stops early when an error output appears
    (the front end then skips the remaining cells).  ``timeout`` defaults to
    $ATTENTION_LAB_E2E_RUN_TIMEOUT or 600 s (training notebooks on a busy machine).
    """
    timeout = timeout or float(os.environ.get("ATTENTION_LAB_E2E_RUN_TIMEOUT", 600))
    page.click(".lm-MenuBar-itemLabel:text-is('Run')")
    page.click(".lm-Menu-item[data-command='runmenu:run-all']")
    deadline = time.monotonic() + timeout
    page.wait_for_timeout(500)
    while True:
        state = wait_idle(page, max(1.0, deadline - time.monotonic()))
        if page.query_selector(ERROR_OUTPUTS) is not None:
            return state
        if all(cell["count"] for cell in state["cells"] if cell["source"]):
            return state
        if time.monotonic() > deadline:
            return state
        page.wait_for_timeout(300)


def wait_widgets_rendered(page, timeout: float = 30.0) -> None:
    """Wait until every widget output has a view and every explorer figure has a src."""
    page.wait_for_function("""(sel) => {
      const imgs = [...document.querySelectorAll(sel + ' img.widget-image')];
      const pending = document.querySelectorAll(sel + ' .jp-OutputArea-output[data-mime-type='
          + '"application/vnd.jupyter.widget-view+json"]:empty');
      return pending.length === 0 && imgs.every(img => img.getAttribute('src'));
    }""", arg=PANEL, timeout=timeout * 1e3)


def error_texts(page) -> list[str]:
    """Tracebacks, error outputs and 'Error displaying widget' messages in the notebook."""
    texts = [el.inner_text()[-2000:] for el in page.query_selector_all(ERROR_OUTPUTS)]
    texts += [el.inner_text()[:500] for el in page.query_selector_all(
        f"{PANEL} .jp-OutputArea-output:has-text('Error displaying widget')")]
    return texts


def open_and_run(page, server: JupyterServer, name: str) -> dict:
    """Open ``name``, Run All, and wait until every widget is drawn; the final notebook state.

    Raises AssertionError naming the notebook when a cell fails (its traceback),
    a code cell did not run, or a widget cannot be displayed: the steps every
    browser check starts with, in either front end.
    """
    open_notebook(page, server, name)
    state = run_all(page)
    errors = error_texts(page)
    assert not errors, f"{name}: error output after Run All:\n" + "\n---\n".join(errors)
    not_run = [i for i, cell in enumerate(state["cells"]) if cell["source"] and not cell["count"]]
    assert not not_run, f"{name}: code cells {not_run} (0-based) did not run"
    wait_widgets_rendered(page)
    errors = error_texts(page)
    assert not errors, f"{name}: widget errors:\n" + "\n---\n".join(errors)
    return state


# -- explorers and their controls ---------------------------------------------

# Controls of explorer ``index``: sliders, dropdowns, checkboxes, comboboxes (a text box
# with suggestions) and toggle/radio buttons.
# Each is addressed by (kind, position) so it can be found again after a redraw.
_CONTROLS_JS = """([sel, index]) => {
  const panel = document.querySelectorAll(sel)[index];
  const own = el => el.closest('.widget-vbox:has(> .widget-image)') === panel;
  const label = el => {
    const box = el.closest('.widget-inline-hbox, .widget-hbox, .widget-box');
    const l = box && box.querySelector('.widget-label');
    return (l && l.textContent.trim()) || '';
  };
  const out = [];
  panel.querySelectorAll('.widget-slider .noUi-handle').forEach((el, i) => {
    if (own(el) && !el.closest('.widget-slider').classList.contains('mod-disabled'))
      out.push({kind: 'slider', i, label: label(el)});
  });
  panel.querySelectorAll('.widget-dropdown select').forEach((el, i) => {
    if (own(el) && !el.disabled && el.options.length > 1)
      out.push({kind: 'dropdown', i, label: label(el)});
  });
  panel.querySelectorAll('.widget-checkbox input[type=checkbox]').forEach((el, i) => {
    if (own(el) && !el.disabled) out.push({kind: 'checkbox', i, label: label(el)});
  });
  panel.querySelectorAll('.widget-text input[list]').forEach((el, i) => {
    const options = el.list ? el.list.options.length : 0;
    if (own(el) && !el.disabled && options > 1) out.push({kind: 'combobox', i, label: label(el)});
  });
  panel.querySelectorAll('.widget-toggle-buttons, .widget-radio-box').forEach((el, i) => {
    if (own(el)) out.push({kind: 'choice', i, label: label(el)});
  });
  return out;
}"""

_CONTROL_SELECTORS = {
    "slider": ".widget-slider .noUi-handle",
    "dropdown": ".widget-dropdown select",
    "checkbox": ".widget-checkbox input[type=checkbox]",
    "combobox": ".widget-text input[list]",
    "choice": ".widget-toggle-buttons, .widget-radio-box",
}

# SHA-256 of the explorer's current PNG (its src is a blob: URL that changes on
# every redraw, even to identical bytes, so the bytes are compared, not the URL).
_FIGURE_HASH_JS = """async ([sel, index]) => {
  const img = document.querySelectorAll(sel)[index].querySelector(':scope > img.widget-image');
  const src = img.getAttribute('src');
  try {
    const bytes = await (await fetch(src)).arrayBuffer();
    const digest = await crypto.subtle.digest('SHA-256', bytes);
    return src + '|' + [...new Uint8Array(digest)].map(b => b.toString(16)).join('');
  } catch (e) { return src + '|unreadable'; }
}"""


def explorer_count(page) -> int:
    return len(page.query_selector_all(EXPLORERS))


def explorer(page, index: int):
    return page.query_selector_all(EXPLORERS)[index]


def controls(page, index: int) -> list[dict]:
    return page.evaluate(_CONTROLS_JS, [EXPLORERS, index])


def figure_hash(page, index: int) -> str:
    return page.evaluate(_FIGURE_HASH_JS, [EXPLORERS, index])


def png_digest(figure_hash_value: str) -> str:
    """The digest of the PNG in a :func:`figure_hash` (its blob URL left out)."""
    return figure_hash_value.rsplit("|", 1)[-1]


def status_text(page, index: int) -> str:
    html = explorer(page, index).query_selector_all(":scope > .widget-html")
    return html[-1].inner_text() if html else ""


def control_element(page, index: int, control: dict):
    """The control's element, found afresh (outputs may have been re-rendered)."""
    candidates = explorer(page, index).query_selector_all(_CONTROL_SELECTORS[control["kind"]])
    return candidates[control["i"]]


def slider_direction(handle) -> str:
    """ArrowRight unless the handle sits at its maximum (noUiSlider's aria values)."""
    now, top = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
    try:
        return "ArrowLeft" if float(now) >= float(top) else "ArrowRight"
    except (TypeError, ValueError):
        return "ArrowRight"


def drag_slider(page, handle) -> str:
    """Drag a slider's handle by one unit of its range (at least a tenth of the track, at
    most half), towards its far end unless it sits there; returns what was done."""
    track = handle.evaluate_handle("h => h.closest('.noUi-target')").as_element().bounding_box()
    grip = handle.bounding_box()
    low, high = (float(handle.get_attribute(f"aria-value{end}")) for end in ("min", "max"))
    left = slider_direction(handle) == "ArrowLeft"
    width = track["width"] * min(max(1 / max(high - low, 1e-9), 0.1), 0.5)
    x, y = grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - width if left else x + width, y, steps=5)
    page.mouse.up()
    return f"drag {'left' if left else 'right'} {width:.0f} px"


def move_control(page, index: int, control: dict, key: str | None = None,
                 slider_keys: bool = True) -> str:
    """Move one control one step, as a learner would; returns what was done.

    A slider is moved with an arrow key (``key``, else towards its far end), or
    dragged with the mouse where ``slider_keys`` is false (see ``FrontEnd``).
    """
    element = control_element(page, index, control)
    element.scroll_into_view_if_needed()
    kind = control["kind"]
    if kind == "slider" and not slider_keys:
        return drag_slider(page, element)
    if kind == "slider":
        key = key or slider_direction(element)
        element.focus()
        element.press(key)
        return key
    if kind == "dropdown":
        options = element.evaluate("s => [...s.options].map(o => o.value)")
        current = element.evaluate("s => s.value")
        target = options[(options.index(current) + 1) % len(options)]
        element.select_option(target)
        return f"select {target!r}"
    if kind == "checkbox":
        element.click()
        return "click"
    if kind == "combobox":  # type one of its suggestions, then Enter, as a learner would
        options = element.evaluate("e => [...e.list.options].map(o => o.value)")
        current = element.input_value()
        target = options[(options.index(current) + 1) % len(options)] if current in options \
            else options[0]
        element.fill(target)
        element.press("Enter")
        return f"type {target!r}"
    buttons = element.query_selector_all("button:not(.mod-active), input:not(:checked)")
    buttons[0].click()
    return "choose another option"


def wait_figure_change(page, index: int, before: str, timeout: float = 15.0) -> str | None:
    """The new figure hash once it differs from ``before``; None after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = figure_hash(page, index)
        if png_digest(current) != png_digest(before):
            return current
        page.wait_for_timeout(100)
    return None


def gpu_toggle(page, index: int):
    """The explorer's GPU toggle button and the text beside it, or (None, '')."""
    toggle = explorer(page, index).query_selector(".widget-toggle-button:has-text('GPU')")
    if toggle is None:
        return None, ""
    row = toggle.evaluate_handle("b => b.closest('.widget-hbox')").as_element()
    return toggle, row.inner_text() if row else ""


def main(argv: list[str]) -> int:
    if argv[1:] != ["--check"]:
        print(__doc__)
        return 2
    path = find_chromium()
    if path is not None:
        print(f"Chromium for the browser test: {path}")
        return 0
    if browser_required():
        # Exit 0 on purpose: `make test` then runs `make e2e`, which fails loudly.
        print(f"ERROR: {REQUIRE_ENV}=1 but {missing_browser_message()}", file=sys.stderr)
        return 0
    print(missing_browser_message().capitalize(), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
