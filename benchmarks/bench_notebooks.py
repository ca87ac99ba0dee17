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
    """Wall time to start a fresh kernel and run ``path`` top to bottom (nothing is saved)."""
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=600, resources={"metadata": {"path": str(path.parent)}}
                   ).execute()
    return time.perf_counter() - start


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
