"""One small, seeded case per explorer, shared by every test that needs a live explorer.

Each factory returns ``(explorer, moves)``: the explorer at its defaults and a
list of ``update`` keyword sets that, between them, move every control.  The
render tests replay the moves to compare blitted frames with full draws; the
chapter tests start from the same explorers.
"""

import torch

from attention_lab.explorers.additive import AdditiveAttentionExplorer
from attention_lab.explorers.cummax import MaxSourceExplorer
from attention_lab.explorers.masked_softmax import MaskedSoftmaxExplorer
from attention_lab.explorers.multihead import MultiHeadExplorer
from attention_lab.explorers.nadaraya_watson import NadarayaWatsonExplorer
from attention_lab.explorers.scaling import ScalingExplorer
from attention_lab.explorers.seq2seq import AlignmentExplorer
from attention_lab.explorers.temperature import SoftmaxTemperatureExplorer
from attention_lab.explorers.transformer import TransformerAttentionExplorer
from attention_lab.models.cummax import MaxStateSuper
from attention_lab.models.seq2seq import ToySeq2Seq
from tests.helpers import tiny_transformer


def nadaraya_watson():
    g = torch.Generator().manual_seed(0)
    x = torch.sort(torch.rand(30, generator=g) * 5).values
    y = 2 * torch.sin(x) + torch.randn(30, generator=g)
    queries = torch.arange(0, 5, 0.25)
    return (NadarayaWatsonExplorer(x, y, queries, 2 * torch.sin(queries)),
            [{"sigma": 0.1, "query": 3}, {"sigma": 3.0, "query": 19}, {"sigma": 0.05}])


def temperature():
    scores = torch.tensor([[2.0, 0.0, 1.0], [0.0, 3.0, 1.0]])
    return (SoftmaxTemperatureExplorer(scores, ["a", "b", "c"], ["q1", "q2"]),
            [{"temperature": 0.1}, {"temperature": 5.0}])


def masked():
    scores = torch.rand(2, 2, 4, generator=torch.Generator().manual_seed(0))
    return (MaskedSoftmaxExplorer(scores, valid_lens=(2, 3)),
            [{"valid_len_0": 0, "valid_len_1": 4}, {"valid_len_0": 4, "valid_len_1": 1}])


def additive():
    return (AdditiveAttentionExplorer(),
            [{"valid_len_0": 0, "valid_len_1": 10, "num_hiddens": 64},
             {"valid_len_0": 10, "valid_len_1": 1, "num_hiddens": 1}])


def scaling():
    return ScalingExplorer(), [{"d": 2, "sigma": 0.5}, {"d": 1024, "sigma": 1.5}]


def multihead():
    return (MultiHeadExplorer(),
            [{"valid_len_0": 2}, {"num_heads": 2}, {"num_heads": 2, "valid_len_1": 1},
             {"num_heads": 8}])


def alignment():
    torch.manual_seed(0)
    models = {name: ToySeq2Seq(name, num_hiddens=16, num_steps=4)
              for name in ("concat", "additive")}
    return (AlignmentExplorer(models, digits="1234", model="concat"),
            [{"digits": "9071", "model": "additive"}, {"digits": "5555", "model": "concat"}])


def max_source():
    torch.manual_seed(0)
    return (MaxSourceExplorer(MaxStateSuper(16, 4), torch.randn(1, 12, 16)),
            [{"head": 0, "channel": 3}, {"head": 2, "length": 5}, {"head": 3, "length": 12}])


def transformer():
    return (TransformerAttentionExplorer(tiny_transformer(), "314159"),
            [{"sequence": "000000"}, {"sequence": "987654"}])


CASES = {make.__name__: make for make in (
    nadaraya_watson, temperature, masked, additive, scaling, multihead, alignment, max_source,
    transformer)}


def positional():
    from attention_lab.explorers.positional import PositionalExplorer

    return (PositionalExplorer(),
            [{"position": 30, "offset": 20, "frequency": 0}, {"frequency": 15},
             {"offset": 0, "position": 0}, {"position": 40, "offset": 1, "frequency": 7}])


CASES[positional.__name__] = positional
