"""attention_lab.data.stories: the generated next-token corpus."""

import pytest
import torch

from attention_lab.data.stories import CITIES, NAMES, NOUNS, VERBS, VOCAB, story, story_tokens


def test_story_answers_its_question():
    generator = torch.Generator().manual_seed(3)
    for _ in range(50):
        words = story(generator)
        assert words[-5:-2] == [words[-5], "live", "?"] and words[-1] == "."
        name, answer = words[-5], words[-2]
        assert name in NAMES and answer in CITIES
        fact = words.index(name)
        assert words[fact:fact + 4] == [name, "lives", "in", answer]


def test_stream_is_seeded_and_in_vocab():
    a, b = story_tokens(500, seed=1), story_tokens(500, seed=1)
    assert torch.equal(a, b) and a.shape == (500,)
    assert not torch.equal(a, story_tokens(500, seed=2))
    assert 0 <= a.min() and a.max() < len(VOCAB) and len(set(VOCAB)) == len(VOCAB)


def test_bad_length():
    with pytest.raises(ValueError, match="num_tokens must be >= 1, got 0"):
        story_tokens(0)


def test_verbs_agree_with_their_subject():
    generator = torch.Generator().manual_seed(0)
    singular, plural = {n[0] for n in NOUNS}, {n[1] for n in NOUNS}
    verbs_sg, verbs_pl = {v[0] for v in VERBS}, {v[1] for v in VERBS}
    for _ in range(50):
        words = story(generator)
        for i, word in enumerate(words[:-1]):
            if words[i + 1] in verbs_sg | verbs_pl:
                assert word in singular | plural, words
                assert (word in singular) == (words[i + 1] in verbs_sg), words
