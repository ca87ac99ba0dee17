"""`make bench`, part 2: how long each notebook takes to execute, kernel start included.

Goal for the whole series: at most 120 s on a 2-core machine.  Writes
benchmarks/results/latest-notebooks.json and prints a table.
"""

import json
import pathlib
import time

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
GOAL_SECONDS = 120


def execute_seconds(path: pathlib.Path) -> float:
    """Wall time to start a fresh kernel and run ``path`` top to bottom (nothing is saved).

    The clock stops at the last cell's reply: shutting the kernel down (about
    1.4 s of ipykernel's own waiting here) is nobody's wait, so it is done
    immediately and not counted.
    """
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, shutdown_kernel="immediate",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
        seconds = time.perf_counter() - start
    return seconds


def main() -> None:
    times = {}
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        times[path.name] = execute_seconds(path)
        print(f"{path.name:40s} {times[path.name]:6.1f} s", flush=True)
    total = sum(times.values())
    verdict = "within" if total <= GOAL_SECONDS else "OVER"
    print(f"{'whole series':40s} {total:6.1f} s  ({verdict} the {GOAL_SECONDS} s goal)")
    out = ROOT / "benchmarks" / "results" / "latest-notebooks.json"
    out.write_text(json.dumps({"seconds": times, "total": total, "goal": GOAL_SECONDS}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
