"""attention_lab.checkpoints: save, load, the retrain switch and the thread guard."""

import pytest
import torch
from torch import nn

from attention_lab import checkpoints


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv(checkpoints.DIRECTORY_ENV, str(tmp_path))
    return tmp_path


def test_a_saved_model_loads_back_with_its_extras(folder):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    path = checkpoints.save_checkpoint("toy", model, history=[2.3, 1.1], steps=2)
    assert path == folder / "toy.pt" and checkpoints.has_checkpoint("toy")
    other = nn.Linear(3, 2)
    extra = checkpoints.load_checkpoint("toy", other)
    assert extra == {"history": [2.3, 1.1], "steps": 2}
    assert torch.equal(other.weight, model.weight)


def test_a_missing_checkpoint_says_how_to_make_it(folder):
    with pytest.raises(FileNotFoundError, match="make checkpoints"):
        checkpoints.load_checkpoint("absent", nn.Linear(1, 1))


def test_names_are_checked(folder):
    with pytest.raises(ValueError, match="name must be"):
        checkpoints.checkpoint_path("../elsewhere")


def test_a_different_architecture_is_refused(folder):
    checkpoints.save_checkpoint("toy", nn.Linear(3, 2))
    with pytest.raises(RuntimeError, match="size mismatch"):
        checkpoints.load_checkpoint("toy", nn.Linear(4, 2))


@pytest.mark.parametrize(("value", "expected"), [("", False), ("0", False), ("1", True)])
def test_retrain_switch(monkeypatch, value, expected):
    monkeypatch.setenv(checkpoints.RETRAIN_ENV, value)
    assert checkpoints.retrain_requested() is expected


def test_threads_restores_the_count_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(KeyboardInterrupt), checkpoints.threads(1):
        assert torch.get_num_threads() == 1
        raise KeyboardInterrupt
    assert torch.get_num_threads() == before


def test_train_or_load_trains_once_then_loads(folder, capsys):
    calls = []

    def train(model):
        calls.append(torch.get_num_threads())
        with torch.no_grad():
            model.weight.fill_(0.5)
        return {"losses": [1.0, 0.5]}

    history = checkpoints.train_or_load("toy", nn.Linear(2, 1), train)
    assert calls == [1] and history["losses"] == [1.0, 0.5] and "seconds" in history
    fresh = nn.Linear(2, 1)
    again = checkpoints.train_or_load("toy", fresh, train)
    assert calls == [1] and again == history and torch.all(fresh.weight == 0.5)
    checkpoints.train_or_load("toy", fresh, train, retrain=True)
    assert len(calls) == 2
    assert capsys.readouterr().out.splitlines() == [
        "trained and saved toy", "loaded toy", "trained and saved toy"]
