"""Key press -> new figure latency of every explorer, in JupyterLab in Chromium (`make bench-ui`).

For each explorer (``explorer_panel``) of each notebook, the first slider,
dropdown and combobox are each moved ``--moves`` times by keyboard: a slider
by an arrow key (towards its far end, back when it gets there), a dropdown by
selecting its next option, a combobox by typing its next suggestion and Enter.
In the page, ``performance.now()`` is taken at the (last) keydown (a
dropdown's change event), when the figure's
``src`` changes (MutationObserver) and at the first animation frame after the
new PNG is decoded ("frame").  The kernel side, parsed from the explorer's
status line ("compute X ms, draw Y ms"), splits the time into computing,
rendering the PNG and the rest (comm round trip, browser decode and paint).
Moves that show a picture not shown before in the run are also summarised
alone ("new"): a panel keeps the frames of pictures it has shown (an
explorer's ``frame_key``), so a value seen again (a slider swept back) is
shown faster than a new one.

Writes a JSON report (default benchmarks/results/ui_latency.json) and prints a
table.  Goal: for every control, median key press -> new frame <= 100 ms and
90th percentile <= 150 ms at default sizes.  The report records the
matplotlib version the kernels import (the same interpreter and environment as
this script, PYTHONPATH included) and the load average before and after, since
other work on a small machine moves these numbers.

    python tests/e2e/bench_ui.py [--notebooks DIR] [--only GLOB] [--moves N]
                                 [--all-controls] [--out PATH]
                                 [--readme-shot NOTEBOOK:EXPLORER:PATH]
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import browser

GOAL_MS = 100.0
GOAL_P90_MS = 150.0
TIMED_KINDS = ("slider", "dropdown", "combobox")
STATUS = re.compile(r"compute ([\d.]+) ms, draw ([\d.]+) ms")

# Resolves with page timestamps of one move: the start event (a keydown, or a dropdown's
# change), src change, frame after decode.
_ARM_JS = """([sel, index, start]) => {
  const panel = document.querySelectorAll(sel)[index];
  const img = panel.querySelector(':scope > img.widget-image');
  window.__uiMove = new Promise((resolve) => {
    let key = null;
    window.addEventListener(start, () => { key = performance.now(); },
                            {capture: true, once: true});
    const observer = new MutationObserver(() => {
      const src = performance.now();
      observer.disconnect();
      const done = () => requestAnimationFrame(() => resolve(
          {key, src, frame: performance.now(), width: img.naturalWidth,
           shown: img.clientWidth, url: img.getAttribute('src')}));
      img.decode().then(done, done);
    });
    observer.observe(img, {attributes: true, attributeFilter: ['src']});
    setTimeout(() => resolve(null), 15000);
  });
}"""

_PNG_BYTES_JS = "async (url) => (await (await fetch(url)).arrayBuffer()).byteLength"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: list[float]) -> dict:
    if not values:
        return {}
    return {"median": round(statistics.median(values), 1),
            "p90": round(percentile(values, 0.9), 1), "n": len(values)}


def measure_control(page, index: int, control: dict, moves: int) -> dict:
    """Move one control ``moves`` times as a learner would (``browser.move_control``); ms.

    Timing starts at the keydown, or for a dropdown at its change event
    (headless Chromium's arrow keys open the list rather than move in it).
    """
    frames, srcs, compute, draw, sizes, shown = [], [], [], [], [], None
    new_frames, seen = [], {browser.png_digest(browser.figure_hash(page, index))}
    for _ in range(moves):
        previous = browser.status_text(page, index)
        start = "change" if control["kind"] == "dropdown" else "keydown"
        page.evaluate(_ARM_JS, [browser.EXPLORERS, index, start])
        browser.move_control(page, index, control)
        result = page.evaluate("window.__uiMove")
        if result is None or result["key"] is None:
            continue
        frames.append(result["frame"] - result["key"])
        picture = browser.png_digest(browser.figure_hash(page, index))
        if picture not in seen:
            new_frames.append(frames[-1])
            seen.add(picture)
        srcs.append(result["src"] - result["key"])
        shown = (result["width"], result["shown"])
        sizes.append(page.evaluate(_PNG_BYTES_JS, result["url"]))
        try:  # the status line is set right after the image, in the same callback
            page.wait_for_function(
                "([sel, i, old]) => { const h = document.querySelectorAll(sel)[i]"
                ".querySelectorAll(':scope > .widget-html'); return h.length && "
                "h[h.length - 1].innerText !== old; }",
                arg=[browser.EXPLORERS, index, previous], timeout=1000)
        except Exception:  # noqa: BLE001  (same text as before: the same numbers)
            pass
        match = STATUS.search(browser.status_text(page, index))
        if match:
            compute.append(float(match.group(1)))
            draw.append(float(match.group(2)))
        page.wait_for_timeout(100)
    rest = [f - c - d for f, c, d in zip(frames, compute, draw, strict=False)]
    return {"control": control["label"] or f"{control['kind']} {control['i']}",
            "kind": control["kind"],
            "key_to_frame_ms": summary(frames), "new_picture_key_to_frame_ms": summary(new_frames),
            "key_to_src_ms": summary(srcs),
            "compute_ms": summary(compute), "draw_ms": summary(draw),
            "rest_ms": summary(rest),
            "png_kb": round(statistics.median(sizes) / 1024, 1) if sizes else None,
            "png_px_width": shown[0] if shown else None,
            "shown_px_width": shown[1] if shown else None}


# The matplotlib version the notebook's setup cell printed (au.print_environment).
_KERNEL_MATPLOTLIB_JS = """(sel) => {
  for (const el of document.querySelectorAll(sel + ' .jp-OutputArea-output')) {
    const m = el.innerText.match(/matplotlib (\\S+)/);
    if (m) return m[1];
  }
  return null;
}"""


def bench_notebook(page, lab, name: str, moves: int, all_controls: bool) -> list[dict]:
    browser.open_notebook(page, lab, name)
    browser.run_all(page)
    errors = browser.error_texts(page)
    if errors:
        raise RuntimeError(f"{name}: error output after Run All:\n{errors[0]}")
    browser.wait_widgets_rendered(page)
    matplotlib_version = page.evaluate(_KERNEL_MATPLOTLIB_JS, browser.PANEL)
    print(f"{name}: the kernel runs matplotlib {matplotlib_version}", flush=True)
    rows = []
    for index in range(browser.explorer_count(page)):
        timed = [c for c in browser.controls(page, index) if c["kind"] in TIMED_KINDS]
        if not all_controls:  # the first control of each kind
            timed = [c for i, c in enumerate(timed)
                     if c["kind"] not in {d["kind"] for d in timed[:i]}]
        for control in timed:
            row = measure_control(page, index, control, moves)
            rows.append({"notebook": name, "explorer": index,
                         "kernel_matplotlib": matplotlib_version, **row})
            print_row(rows[-1])
    return rows


def print_header() -> None:
    print(f"{'notebook':<28} {'ex':>2} {'control':<16} {'frame med':>9} {'p90':>7} {'new (n)':>10} "
          f"{'compute':>8} {'draw':>6} {'rest':>6} {'png KB':>7} {'px/shown':>9}")


def print_row(row: dict) -> None:
    def med(key):
        return row[key].get("median", float("nan"))

    new = row["new_picture_key_to_frame_ms"]
    print(f"{row['notebook'][:28]:<28} {row['explorer']:>2} {row['control'][:16]:<16} "
          f"{med('key_to_frame_ms'):>9.1f} {row['key_to_frame_ms'].get('p90', float('nan')):>7.1f} "
          f"{med('new_picture_key_to_frame_ms'):>5.1f} ({new.get('n', 0):>2}) "
          f"{med('compute_ms'):>8.1f} {med('draw_ms'):>6.0f} {med('rest_ms'):>6.0f} "
          f"{row['png_kb'] or 0:>7.1f} {row['png_px_width'] or 0}/{row['shown_px_width'] or 0:>4}",
          flush=True)


def readme_shot(page, lab, spec: str) -> None:
    """Save one explorer as a PNG; ``spec`` is NOTEBOOK:INDEX:PATH (e.g. for the README)."""
    name, index, path = spec.split(":", 2)
    browser.open_notebook(page, lab, name)
    browser.run_all(page)
    browser.wait_widgets_rendered(page)
    element = browser.explorer(page, int(index))
    element.scroll_into_view_if_needed()
    box = element.bounding_box()
    status = element.query_selector_all(":scope > .widget-html")
    if status:  # leave out the status line: its timings belong to this machine, not the README
        box["height"] = status[-1].bounding_box()["y"] - box["y"]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path, clip=box)
    print(f"saved {path} ({Path(path).stat().st_size / 1024:.0f} KB)")


def kernel_versions() -> dict[str, str]:
    """matplotlib, ipywidgets and torch as a kernel of this interpreter and environment imports
    them (JupyterLab starts its kernels with ``sys.executable`` and this environment)."""
    code = ("import json, matplotlib, ipywidgets, torch; print(json.dumps({'matplotlib': "
            "matplotlib.__version__, 'ipywidgets': ipywidgets.__version__, "
            "'torch': torch.__version__}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=browser.REPO)
    return json.loads(result.stdout)


def meets_goal(row: dict) -> bool:
    frame = row["key_to_frame_ms"]
    return bool(frame) and frame["median"] <= GOAL_MS and frame["p90"] <= GOAL_P90_MS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", default=None, help="notebook directory (default notebooks/)")
    parser.add_argument("--only", default="*", help="glob of notebook names, e.g. '0[2-4]*'")
    parser.add_argument("--moves", type=int, default=12, help="key presses per slider (>= 10)")
    parser.add_argument("--all-controls", action="store_true",
                        help="every slider, dropdown and combobox, not the first of each kind")
    parser.add_argument("--out", default=str(browser.REPO / "benchmarks/results/ui_latency.json"))
    parser.add_argument("--readme-shot", default=None, metavar="NOTEBOOK:EXPLORER:PATH")
    args = parser.parse_args(argv)
    if browser.find_chromium() is None:
        print(browser.missing_browser_message().capitalize(), file=sys.stderr)
        return 1
    source = browser.notebook_dir(args.notebooks)
    names = [n for n in browser.list_notebooks(source) if fnmatch.fnmatch(n, args.only)]
    rows, failures = [], {}
    versions, load_before = kernel_versions(), os.getloadavg()
    print(f"kernel imports {versions}; load average {load_before}", flush=True)
    started = time.perf_counter()
    with browser.jupyterlab(source) as lab, browser.launch_browser() as chromium:
        context = chromium.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(30_000)
        if args.readme_shot:
            readme_shot(page, lab, args.readme_shot)
            return 0
        print_header()
        for name in names:
            try:
                rows += bench_notebook(page, lab, name, args.moves, args.all_controls)
            except Exception as err:  # noqa: BLE001  (one broken notebook must not stop the rest)
                failures[name] = str(err)[:2000]
                print(f"{name}: FAILED: {str(err)[:300]}", flush=True)
            lab.shutdown_kernels()
    measured = [r for r in rows if r["key_to_frame_ms"]]
    report = {"goal_median_key_to_frame_ms": GOAL_MS, "goal_p90_key_to_frame_ms": GOAL_P90_MS,
              "machine": platform.platform(), "cpus": os.cpu_count(),
              "python": platform.python_version(), "kernel_versions": versions,
              "load_average_before": [round(v, 2) for v in load_before],
              "load_average_after": [round(v, 2) for v in os.getloadavg()],
              "moves_per_control": args.moves,
              "seconds": round(time.perf_counter() - started, 1), "explorers": rows,
              "failures": failures,
              "meeting_goal": sum(map(meets_goal, measured)), "measured": len(measured)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{report['meeting_goal']}/{report['measured']} controls meet the goal "
          f"(key press -> new frame: median <= {GOAL_MS:.0f} ms, 90th percentile <= "
          f"{GOAL_P90_MS:.0f} ms); load average after {report['load_average_after']}; "
          f"report: {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
