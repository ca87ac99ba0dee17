"""Chapter 06: the seq2seq tutorial's concat-rule Attn, the toy reversal model, its explorer."""

import pytest
import torch
from torch.nn import functional as F

import attention_utils as au


def source_attn() -> au.Attn:
    torch.manual_seed(0)
    return au.Attn(query_size=32, key_size=32, value_size1=32, value_size2=64, output_size=64)


def test_attn_shapes_from_the_source():
    attn = source_attn()
    Q, K, V = torch.randn(1, 1, 32), torch.randn(1, 1, 32), torch.randn(1, 32, 64)
    output, weights = attn(Q, K, V)
    assert output.shape == (1, 1, 64)
    assert weights.shape == (1, 32)
    torch.testing.assert_close(weights.sum(-1), torch.ones(1))


def test_attn_matches_the_source_formula_and_keeps_inputs():
    attn = source_attn()
    Q, K, V = torch.randn(1, 3, 32), torch.randn(1, 3, 32), torch.randn(1, 32, 64)
    copies = [t.clone() for t in (Q, K, V)]
    output, weights = attn(Q, K, V)
    expected_w = F.softmax(attn.attn(torch.cat((Q[0], K[0]), 1)), dim=1)  # (n, vs1)
    applied = expected_w @ V[0]  # (n, vs2)
    expected = attn.attn_combine(torch.cat((Q[0], applied), 1)).unsqueeze(0)
    torch.testing.assert_close(weights, expected_w)
    torch.testing.assert_close(output, expected)
    for original, copy in zip((Q, K, V), copies, strict=True):
        assert torch.equal(original, copy)


def test_attn_weights_ignore_the_values():
    attn = source_attn()
    Q, K = torch.randn(1, 1, 32), torch.randn(1, 1, 32)
    _, w1 = attn(Q, K, torch.randn(1, 32, 64))
    _, w2 = attn(Q, K, torch.randn(1, 32, 64))
    assert torch.equal(w1, w2)


def test_attn_step_equals_forward_for_one_row():
    attn = source_attn()
    q, k, values = torch.randn(1, 32), torch.randn(1, 32), torch.randn(1, 32, 64)
    out_step, w_step = attn.step(q, k, values)
    out_fwd, w_fwd = attn(q[None], k[None], values)
    torch.testing.assert_close(out_step, out_fwd[0])
    torch.testing.assert_close(w_step, w_fwd)
    out, w = attn.step(torch.randn(5, 32), torch.randn(5, 32), torch.randn(5, 32, 64))
    assert out.shape == (5, 64) and w.shape == (5, 32)


@pytest.mark.parametrize(("Q", "K", "V", "match"), [
    (torch.randn(1, 1, 16), torch.randn(1, 1, 32), torch.randn(1, 32, 64), r"Q must have shape"),
    (torch.randn(1, 1, 32), torch.randn(1, 2, 32), torch.randn(1, 32, 64), r"K must have shape"),
    (torch.randn(1, 1, 32), torch.randn(1, 1, 32), torch.randn(1, 40, 64),
     r"V must have shape \(1, 32, 64\).*V \(1, 40, 64\)"),
    (torch.randn(2, 1, 32), torch.randn(2, 1, 32), torch.randn(1, 32, 64), r"Q must have shape"),
    (torch.randn(1, 32), torch.randn(1, 1, 32), torch.randn(1, 32, 64), r"Q must be 3-D"),
])
def test_attn_input_errors(Q, K, V, match):
    with pytest.raises(ValueError, match=match):
        source_attn()(Q, K, V)


def test_attn_type_error_and_step_errors():
    attn = source_attn()
    with pytest.raises(TypeError, match="V must be a torch.Tensor"):
        attn(torch.randn(1, 1, 32), torch.randn(1, 1, 32), [[0.0]])
    with pytest.raises(ValueError, match=r"values must have shape \(4, 32, 64\)"):
        attn.step(torch.randn(4, 32), torch.randn(4, 32), torch.randn(3, 32, 64))
    with pytest.raises(ValueError, match="k must be 2-D"):
        attn.step(torch.randn(4, 32), torch.randn(1, 4, 32), torch.randn(4, 32, 64))


def test_reversal_data_is_seeded_and_reversed():
    src, tgt = au.reversal_data(10, 6, seed=3)
    assert src.shape == tgt.shape == (10, 6)
    assert torch.equal(tgt, src.flip(1))
    assert torch.equal(src, au.reversal_data(10, 6, seed=3)[0])
    assert 0 <= int(src.min()) and int(src.max()) <= 9
    with pytest.raises(ValueError, match="num_steps must be >= 1"):
        au.reversal_data(10, 0)


@pytest.mark.parametrize("scoring", ["concat", "additive"])
def test_toy_model_shapes(scoring):
    model = au.ToySeq2Seq(scoring, num_hiddens=16, num_steps=5)
    src = torch.randint(0, 10, (3, 5))
    assert model(src).shape == (3, 5, 11)
    assert model.attention_weights.shape == (3, 5, 5)
    torch.testing.assert_close(model.attention_weights.sum(-1), torch.ones(3, 5))
    assert model(src, torch.full((3, 5), au.BOS)).shape == (3, 5, 11)


def test_toy_model_errors():
    with pytest.raises(ValueError, match="scoring must be 'concat' or 'additive'"):
        au.ToySeq2Seq("dot")
    with pytest.raises(ValueError, match=r"src must be \(batch, num_steps=8\), got \(2, 6\)"):
        au.ToySeq2Seq("concat")(torch.zeros(2, 6, dtype=torch.long))


def train_reversal(scoring: str, num_steps: int = 5, steps: int = 150) -> au.ToySeq2Seq:
    torch.manual_seed(0)
    model = au.ToySeq2Seq(scoring, num_hiddens=32, num_steps=num_steps)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for step in range(steps):
        src, tgt = au.reversal_data(64, num_steps, seed=100 + step)
        bos = torch.full_like(tgt[:, :1], au.BOS)
        logits = model(src, torch.cat((bos, tgt[:, :-1]), 1))
        loss = F.cross_entropy(logits.flatten(0, 1), tgt.flatten())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return model



def test_additive_model_learns_reversal(one_thread):
    model = train_reversal("additive")
    src, tgt = au.reversal_data(300, 5, seed=1)
    with torch.no_grad():
        accuracy = (model(src).argmax(-1) == tgt).float().mean().item()
    assert accuracy >= 0.9


def make_explorer() -> au.AlignmentExplorer:
    torch.manual_seed(0)
    models = {name: au.ToySeq2Seq(name, num_hiddens=16, num_steps=4)
              for name in ("concat", "additive")}
    return au.AlignmentExplorer(models, digits="1234", model="concat")


def test_explorer_update_changes_image_title_and_ticks():
    explorer = make_explorer()
    before = explorer.grid.images[0].get_array().copy()
    fig = explorer.update(digits="9870", model="additive")
    assert fig is explorer.fig
    assert not torch.allclose(torch.as_tensor(before),
                              torch.as_tensor(explorer.grid.images[0].get_array()))
    assert explorer.title.get_text().startswith("additive: 9870 -> ")
    assert [t.get_text() for t in explorer.ax.get_xticklabels()] == list("9870")


def test_explorer_errors_and_to_cpu():
    explorer = make_explorer()
    with pytest.raises(ValueError, match="digits must be a string of 4 digits"):
        explorer.update(digits="12a4", model="concat")
    with pytest.raises(ValueError, match="model must be one of"):
        explorer.update(digits="1234", model="dot")
    assert explorer.to("cpu") is explorer
    assert explorer.device == torch.device("cpu")
    explorer.update(digits="4321", model="concat")


def test_explorer_title_stays_inside_the_rendered_figure():
    """The panel renders the exact canvas (no tight bbox): the title must be inside it."""
    explorer = make_explorer()
    explorer.update("4321", "additive")
    au.figure_png(explorer.fig)  # one Agg draw, as the panel does
    box = explorer.title.get_window_extent(explorer.fig.canvas.get_renderer())
    assert explorer.title.get_text().startswith("additive")
    assert 0 <= box.y0 and box.y1 <= explorer.fig.bbox.height, (box, explorer.fig.bbox)
