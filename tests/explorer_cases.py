"""One small, seeded case per explorer, shared by every test that needs a live explorer.

Each factory returns ``(explorer, moves)``: the explorer at its defaults and a
list of ``update`` keyword sets that, between them, move every control.  The
render tests replay the moves to compare blitted frames with full draws; the
chapter tests start from the same explorers.  :data:`REFUSED` lists, per case,
``update`` keyword sets the explorer must refuse, with the error and a pattern
of its message: the panel tests check that each leaves the explorer and its
figure as they were and that a panel shows the message.
"""

import torch

from attention_lab.explorers.additive import AdditiveAttentionExplorer
from attention_lab.explorers.cummax import MaxSourceExplorer
from attention_lab.explorers.dates import DateAttentionExplorer
from attention_lab.explorers.masked_softmax import MaskedSoftmaxExplorer
from attention_lab.explorers.multihead import MultiHeadExplorer
from attention_lab.explorers.nadaraya_watson import NadarayaWatsonExplorer
from attention_lab.explorers.scaling import ScalingExplorer
from attention_lab.explorers.seq2seq import AlignmentExplorer
from attention_lab.explorers.temperature import SoftmaxTemperatureExplorer
from attention_lab.explorers.transformer import TransformerAttentionExplorer
from attention_lab.models.cummax import MaxStateSuper
from attention_lab.models.seq2seq import ToySeq2Seq
from tests.helpers import FakeDateModel, tiny_transformer


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


def dates():
    return (DateAttentionExplorer(FakeDateModel(), "Dec 1st 26"),
            [{"step": 3}, {"text": "二〇二六年十二月一日", "head": 2}, {"layer": 1, "step": 10},
             {"text": "Tuesday, 1 December 2026", "step": 1}])


NUMBER = "must be a number in"
INTEGER = "must be an integer"
REFUSED = {
    "nadaraya_watson": [
        ({"sigma": 1e200}, ValueError, rf"sigma \(the kernel width\) {NUMBER} 0.0001 .. 10000, "
                                        r"got 1e\+200"),
        ({"sigma": 0}, ValueError, rf"sigma \(the kernel width\) {NUMBER}"),
        ({"sigma": float("nan")}, ValueError, r"sigma .* got nan"),
        ({"sigma": "1"}, TypeError, rf"sigma .* {NUMBER} .* got str '1'"),
        ({"sigma": True}, TypeError, r"sigma .* got bool True"),
        ({"query": 20}, ValueError, rf"query \(a row index into x_query\) {INTEGER} 0 .. 19"),
        ({"query": 2.0}, TypeError, rf"query .* {INTEGER} .* got float 2.0"),
        ({"sigma": 0.5, "query": 99}, ValueError, r"query .* got 99")],
    "temperature": [
        ({"temperature": 0}, ValueError, rf"temperature \(divides the scores\) {NUMBER} "
                                         r"0.001 \.\. 1000, got 0"),
        ({"temperature": 1e-39}, ValueError, r"temperature .* 0.001 \.\. 1000, got 1e-39"),
        ({"temperature": 1e200}, ValueError, r"temperature .* got 1e\+200"),
        ({"temperature": float("inf")}, ValueError, "temperature .* got inf"),
        ({"temperature": "hot"}, TypeError, f"temperature .* {NUMBER} .* got str")],
    "masked": [
        ({"valid_len_0": 5}, ValueError, rf"valid_len_0 {INTEGER} 0 .. 4, got 5"),
        ({"valid_len_1": -1}, ValueError, rf"valid_len_1 {INTEGER} 0 .. 4, got -1"),
        ({"valid_len_0": 1.5}, TypeError, rf"valid_len_0 {INTEGER} 0 .. 4, got float 1.5"),
        ({"valid_len_0": True}, TypeError, "valid_len_0 .* got bool True"),
        ({"valid_len_0": 1, "valid_len_1": 9}, ValueError, "valid_len_1 .* got 9"),
        ({"valid_len_2": 1}, TypeError, r"unknown keyword\(s\) \['valid_len_2'\]")],
    "additive": [
        ({"valid_len_0": 11}, ValueError, rf"valid_len_0 {INTEGER} 0 .. 10, got 11"),
        ({"num_hiddens": 0}, ValueError, rf"num_hiddens {INTEGER} 1 .. 4096, got 0"),
        ({"num_hiddens": 10**6}, ValueError, "num_hiddens .* got 1000000"),
        ({"valid_len_0": 3, "num_hiddens": 2.5}, TypeError, "num_hiddens .* got float 2.5")],
    "scaling": [
        ({"d": 3}, ValueError, r"d must be one of \[2, 4, .*, 1024\], got 3"),
        ({"d": True}, ValueError, "d must be one of .* got True"),
        ({"sigma": 1e200}, ValueError, rf"sigma \(entries are N\(0, sigma\^2\)\) {NUMBER} "
                                        r"0.001 .. 1000, got 1e\+200"),
        ({"d": 2, "sigma": -1}, ValueError, "sigma .* got -1")],
    "multihead": [
        ({"num_heads": 3}, ValueError, r"num_heads must be one of \[1, 2, 4, 8\], got 3"),
        ({"valid_len_0": 7}, ValueError, rf"valid_len_0 {INTEGER} 0 .. 6, got 7"),
        ({"num_heads": 2, "valid_len_0": 7}, ValueError, "valid_len_0 .* got 7"),
        ({"valid_len_0": 2, "num_heads": 3}, ValueError, "num_heads .* got 3"),
        ({"num_heads": "2"}, ValueError, "num_heads .* got '2'")],
    "alignment": [
        ({"digits": "12a4"}, ValueError, "digits must be a string of 4 digits 0-9, got '12a4'"),
        ({"digits": "123"}, ValueError, "digits must be a string of 4 digits 0-9, got '123'"),
        ({"digits": "\u0661\u0662\u0663\u0664"}, ValueError, "digits must be a string of 4"),
        ({"digits": 1234}, TypeError, "digits must be a string of 4 digits 0-9, got int 1234"),
        ({"model": "nope"}, ValueError, r"model must be one of \['concat', 'additive'\], got "
                                        "'nope'"),
        ({"digits": "9071", "model": "nope"}, ValueError, "model must be one of")],
    "max_source": [
        ({"head": 4}, ValueError, rf"head {INTEGER} 0 \.\. 3, got 4"),
        ({"channel": 4}, ValueError, rf"channel {INTEGER} 0 \.\. 3, got 4"),
        ({"length": 0}, ValueError, rf"length {INTEGER} 1 \.\. 12, got 0"),
        ({"length": 13}, ValueError, "length .* got 13"),
        ({"head": 1.0}, TypeError, rf"head {INTEGER} .* got float 1.0"),
        ({"head": 1, "length": -1}, ValueError, "length .* got -1")],
    "transformer": [
        ({"sequence": "12345"}, ValueError, "sequence must have 6 tokens .* got 5"),
        ({"sequence": "31415a"}, ValueError, "sequence must be a string of digits, got '31415a'"),
        ({"sequence": [1, 2, 3, 4, 5, 1.5]}, TypeError, "sequence must hold integer token ids"),
        ({"sequence": [1, 2, 3, 4, 5, 10]}, ValueError, r"token ids in 0 \.\. 9"),
        ({"sequence": 314159}, TypeError, "sequence must be a string of digits or a list of "
                                          "token ids, got int")],
    "dates": [
        ({"text": "Dec 1st 26!"}, ValueError, "text may only use the vocabulary's .* got '!'"),
        ({"text": "hello"}, ValueError, "text must be a date in a supported format"),
        ({"text": "31 February 2026"}, ValueError, "text must be a real date in 1950-2049"),
        ({"text": "x" * 40}, ValueError, r"text must have 1 \.\. 32 characters, got 40"),
        ({"text": 20261201}, TypeError, "text must be a str, got int"),
        ({"layer": 3}, ValueError, r"layer must be one of \[1, 2\], got 3"),
        ({"head": 0}, ValueError, r"head must be one of \[1, 2\], got 0"),
        ({"step": 11}, ValueError, rf"step {INTEGER} 1 .. 10, got 11"),
        ({"text": "1/12/2026", "step": 0}, ValueError, "step .* got 0")],
}


CASES = {make.__name__: make for make in (
    nadaraya_watson, temperature, masked, additive, scaling, multihead, alignment, max_source,
    transformer, dates)}


def positional():
    from attention_lab.explorers.positional import PositionalExplorer

    return (PositionalExplorer(),
            [{"position": 30, "offset": 20, "frequency": 0}, {"frequency": 15},
             {"offset": 0, "position": 0}, {"position": 40, "offset": 1, "frequency": 7}])


CASES[positional.__name__] = positional
