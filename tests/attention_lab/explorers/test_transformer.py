"""Chapter 09's explorer: every head of a Transformer encoder."""

import numpy as np
import pytest
import torch

from attention_lab.analysis import attention_entropy
from attention_lab.explorers.transformer import TransformerAttentionExplorer
from tests.helpers import tiny_transformer


def test_explorer_builds_one_panel_per_layer_and_head():
    explorer = TransformerAttentionExplorer(tiny_transformer(num_heads=2), "314159")
    assert explorer.grid.axes.shape == (2, 2)
    assert len(explorer.titles) == 4
    assert explorer.grid.images[0].get_array().shape == (6, 6)
    assert "input 314159" in explorer.suptitle.get_text()


def test_explorer_update_changes_images_titles_and_ticks_in_place():
    explorer = TransformerAttentionExplorer(tiny_transformer(), "314159")
    fig, image = explorer.fig, explorer.grid.images[0]
    before = np.array(image.get_array())
    titles = [t.get_text() for t in explorer.titles]
    assert explorer.update(sequence=[9, 9, 0, 0, 1, 2]) is fig
    assert explorer.grid.images[0] is image
    assert not np.allclose(before, image.get_array())
    assert [t.get_text() for t in explorer.titles] != titles
    assert "input 990012" in explorer.suptitle.get_text()
    ticks = [t.get_text() for t in explorer.grid.axes[-1, 0].get_xticklabels()]
    assert ticks == ["0:9", "1:9", "2:0", "3:0", "4:1", "5:2"]


def test_explorer_titles_report_the_statistics():
    model = tiny_transformer()
    explorer = TransformerAttentionExplorer(model, "012345")
    with torch.no_grad():
        model.eval()(torch.arange(6)[None])
    entropy = attention_entropy(model.attention_weights[0][0, 0])
    assert f"H = {entropy:.2f}" in explorer.titles[0].get_text()


def test_explorer_to_cpu_and_restores_training_mode():
    model = tiny_transformer().train()
    explorer = TransformerAttentionExplorer(model, "012345")
    assert explorer.to("cpu") is explorer and explorer.device == torch.device("cpu")
    explorer.update(sequence="543210")
    assert model.training


def test_explorer_does_not_mutate_its_input():
    sequence = [1, 2, 3, 4, 5, 6]
    explorer = TransformerAttentionExplorer(tiny_transformer(), sequence)
    explorer.update(sequence=sequence)
    assert sequence == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(("sequence", "error", "match"), [
    ("12345", ValueError, "must have 6 tokens .* got 5"),
    ("12a456", ValueError, "string of digits"),
    ([0, 1, 2, 3, 4, 10], ValueError, r"token ids in 0 \.\. 9"),
    (3.5, TypeError, "string of digits or a list of token ids, got float"),
])
def test_explorer_rejects_bad_sequences(sequence, error, match):
    explorer = TransformerAttentionExplorer(tiny_transformer(), "012345")
    with pytest.raises(error, match=match):
        explorer.update(sequence=sequence)


def test_explorer_needs_a_tiny_transformer():
    with pytest.raises(TypeError, match="model must be a TinyTransformer, got Linear"):
        TransformerAttentionExplorer(torch.nn.Linear(2, 2), "01")
