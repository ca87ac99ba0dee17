"""Small trained models shipped with the series, so no notebook trains unless asked to.

A chapter that trains a model builds it in the notebook and calls
:func:`train_or_load`, which either trains it
(``RETRAIN = True``, or ``make checkpoints``) or loads the weights that
``make checkpoints`` stored in ``attention_lab/weights/<name>.pt``, with
the training history kept beside them so the loss curves can still be shown.
Loaded weights make every stored output the same on every CPU and thread
count; training is deterministic only on one machine (kernels differ).

``ATTENTION_LAB_RETRAIN=1`` asks every notebook to retrain;
``ATTENTION_LAB_CHECKPOINTS=DIR`` reads and writes checkpoints in ``DIR``
instead (tests retrain into a temporary folder).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

DIRECTORY = Path(__file__).resolve().parent / "weights"
RETRAIN_ENV = "ATTENTION_LAB_RETRAIN"
DIRECTORY_ENV = "ATTENTION_LAB_CHECKPOINTS"


def retrain_requested() -> bool:
    """True when ``ATTENTION_LAB_RETRAIN=1`` (``make checkpoints`` sets it)."""
    return os.environ.get(RETRAIN_ENV, "") not in ("", "0")


def checkpoint_path(name: str) -> Path:
    """Where checkpoint ``name`` lives: ``$ATTENTION_LAB_CHECKPOINTS`` or the package's folder."""
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"name must be letters, digits, '-' and '_', got {name!r}")
    return Path(os.environ.get(DIRECTORY_ENV) or DIRECTORY) / f"{name}.pt"


def has_checkpoint(name: str) -> bool:
    return checkpoint_path(name).is_file()


def save_checkpoint(name: str, model: nn.Module, **extra: object) -> Path:
    """Store ``model``'s weights (on the CPU) and ``extra`` (histories, settings) as ``name``.

    ``extra`` may hold numbers, strings, lists, dicts and tensors: what
    ``torch.load(..., weights_only=True)`` reads back.
    """
    path = checkpoint_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    torch.save({"state_dict": state, "extra": extra}, path)
    return path


def load_checkpoint(name: str, model: nn.Module) -> dict:
    """Load checkpoint ``name`` into ``model`` (strictly: same architecture) and return its extras.

    Raises ``FileNotFoundError`` naming the file and how to make it.
    """
    path = checkpoint_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint {path}: run `make checkpoints`, or set "
                                "RETRAIN = True in the notebook to train it here")
    stored = torch.load(path, map_location="cpu", weights_only=True)
    device = next(model.parameters(), torch.empty(0)).device
    model.load_state_dict(stored["state_dict"])
    model.to(device)
    return stored["extra"]


@contextlib.contextmanager
def threads(count: int) -> Iterator[None]:
    """Run the block on ``count`` torch threads, then restore the count (also on an interrupt).

    Tiny models train faster on one thread than on two busy ones, and one
    thread makes a training run repeatable on a given machine.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_or_load(name: str, model: nn.Module, train: Callable[[nn.Module], dict],
                  retrain: bool = False) -> dict:
    """Train ``model`` with ``train(model)`` if ``retrain`` (or no checkpoint ``name``
    exists) and store it with the history ``train`` returns; then load checkpoint
    ``name`` into ``model`` and return that history.

    Training runs on one thread (tiny matrices: the fastest, and repeatable on one
    machine); the history gains ``seconds``, the training's wall-clock time. Prints
    one line saying which of the two happened.
    """
    train_here = retrain or not has_checkpoint(name)
    if train_here:
        with threads(1):
            start = time.perf_counter()
            history = train(model)
            seconds = time.perf_counter() - start
        save_checkpoint(name, model, seconds=round(seconds, 1), **history)
    history = load_checkpoint(name, model)
    print(f"{'trained and saved' if train_here else 'loaded'} {name}")
    return history
