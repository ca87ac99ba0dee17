"""Chapter 08's explorer: one head's cross- and causal self-attention while a date is decoded."""

import numpy as np
import pytest
import torch

from attention_lab.explorers.dates import DateAttentionExplorer
from tests.helpers import FakeDateModel


def test_static_figure_at_the_defaults_shows_every_written_row():
    explorer = DateAttentionExplorer(FakeDateModel())
    cross = np.ma.filled(explorer.cross_image.get_array(), np.nan)
    assert cross.shape == (10, 32)
    text = "Tuesday, 1 December 2026"
    assert np.isfinite(cross[:, :len(text)]).all() and np.isnan(cross[:, len(text):]).all()
    assert np.allclose(cross[:, :len(text)].sum(-1), 1.0, atol=1e-5)  # rows are distributions
    assert text in explorer.suptitle.get_text()
    assert [t.get_text() for t in explorer.tick_labels[:3]] == ["T", "u", "e"]


def test_causal_panel_shows_the_masked_triangle_as_no_weight():
    explorer = DateAttentionExplorer(FakeDateModel(), "1/12/2026")
    weights = explorer.self_image.get_array()  # (10, 10)
    above = np.triu(np.ones((10, 10), dtype=bool), 1)
    assert np.isnan(np.ma.filled(weights, np.nan)[above]).all()
    assert np.isfinite(np.ma.filled(weights, np.nan)[~above]).all()


def test_step_hides_the_rows_not_yet_written_and_moves_the_frame():
    explorer = DateAttentionExplorer(FakeDateModel(), "Dec 1st 26")
    image = explorer.cross_image
    assert explorer.update(step=3) is explorer.fig and explorer.cross_image is image
    cross = np.ma.filled(image.get_array(), np.nan)
    assert np.isfinite(cross[:3, :10]).all() and np.isnan(cross[3:]).all()
    assert explorer.rows[0].get_y() == pytest.approx(1.5)
    assert "step 3" in explorer.suptitle.get_text()
    output_ticks = explorer.tick_labels[32:42]
    assert [t.get_text() for t in output_ticks][3:] == [""] * 7


def test_layer_and_head_pick_the_map_and_a_new_text_is_decoded_again():
    model = FakeDateModel()
    explorer = DateAttentionExplorer(model, "Dec 1st 26", layer=1, head=1)
    first = np.ma.filled(explorer.cross_image.get_array(), np.nan).copy()
    explorer.update(head=2)
    assert not np.allclose(first[:, :10], explorer.cross_image.get_array()[:, :10])
    assert "layer 1 head 2" in explorer.cross_title.get_text()
    explorer.update(text="二〇二六年十二月一日")
    assert explorer.fmt == "chinese_numerals" and explorer.iso == "2026-12-01"
    assert explorer.tick_labels[0].get_text() == "二"
    assert explorer.frame_key()[:4] == ("二〇二六年十二月一日", 1, 2, 10)


def test_caption_names_the_format_and_an_unseen_one():
    explorer = DateAttentionExplorer(FakeDateModel(), "1st December 2026")
    assert "ordinal_month_year" in explorer.caption() and "never seen" in explorer.caption()
    assert explorer.caption_texts() == {explorer.suptitle: ""}


def test_explorer_restores_training_mode_and_moves_to_cpu():
    model = FakeDateModel().train()
    explorer = DateAttentionExplorer(model)
    assert explorer.to("cpu") is explorer and explorer.device == torch.device("cpu")
    explorer.update(text="01.12.2026")
    assert model.training


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"text": "Dec 1st 26?"}, ValueError, "text may only use the vocabulary's"),
    ({"text": "Dec 32nd 26"}, ValueError, "text must be a real date"),
    ({"layer": 0}, ValueError, r"layer must be one of \[1, 2\], got 0"),
    ({"step": 1.5}, TypeError, "step must be an integer 1 .. 10, got float 1.5"),
    ({"figsize": (0, 3)}, ValueError, "figsize"),
])
def test_construction_refuses_bad_values(kwargs, error, match):
    with pytest.raises(error, match=match):
        DateAttentionExplorer(FakeDateModel(), **kwargs)
    with pytest.raises(TypeError, match="model must have translate, attention_maps"):
        DateAttentionExplorer(torch.nn.Linear(2, 2))


def test_a_refused_text_keeps_the_last_figure():
    explorer = DateAttentionExplorer(FakeDateModel(), "Dec 1st 26")
    before = np.ma.filled(explorer.cross_image.get_array(), np.nan).copy()
    with pytest.raises(ValueError, match="supported format"):
        explorer.update(text="Tuesday 1 Dec", step=2)
    assert explorer.text == "Dec 1st 26" and explorer.step == 10
    assert np.array_equal(before, np.ma.filled(explorer.cross_image.get_array(), np.nan),
                          equal_nan=True)
