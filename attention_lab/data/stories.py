"""A tiny generated corpus for next-token prediction: templated stories with a question at the end.

Each story states where two or three people live, mixes in sentences with
subject-verb agreement, then asks where one of them lives and answers::

    bob lives in paris . the small cats see a dog . eve lives in rome .
    where does bob live ? paris .

Most tokens follow from the grammar (local context); the answer needs a
lookup of the named person's fact earlier in the story.  Word-level, seeded,
made offline: nothing is downloaded.
"""

from __future__ import annotations

import torch

NAMES = ("ann", "bob", "eve", "max", "ida", "leo", "zoe", "sam")
CITIES = ("paris", "rome", "oslo", "lima", "kyiv", "baku", "doha", "riga")
NOUNS = (("cat", "cats"), ("dog", "dogs"), ("bird", "birds"), ("fox", "foxes"))
VERBS = (("sees", "see"), ("likes", "like"), ("chases", "chase"))
ADJECTIVES = ("small", "big", "old", "red")
WORDS = ("lives", "in", "where", "does", "live", "?", ".", "the", "a")
VOCAB = tuple(dict.fromkeys(NAMES + CITIES + sum(NOUNS, ()) + sum(VERBS, ()) + ADJECTIVES
                            + WORDS))


def _pick(options: tuple, generator: torch.Generator) -> object:
    return options[int(torch.randint(len(options), (), generator=generator))]


def _filler(generator: torch.Generator) -> list[str]:
    """``the [adj] noun(s) verb(s) a noun .``: the verb agrees with the subject's number."""
    plural = int(torch.randint(2, (), generator=generator))
    words = ["the"]
    if torch.rand((), generator=generator) < 0.5:
        words.append(_pick(ADJECTIVES, generator))
    words += [_pick(NOUNS, generator)[plural], _pick(VERBS, generator)[plural], "a",
              _pick(NOUNS, generator)[0], "."]
    return words


def story(generator: torch.Generator) -> list[str]:
    """One story as a list of words (see the module docstring)."""
    count = 2 + int(torch.randint(2, (), generator=generator))
    people = torch.randperm(len(NAMES), generator=generator)[:count].tolist()
    words: list[str] = []
    for person in people:
        words += [NAMES[person], "lives", "in", _pick(CITIES, generator), "."]
        if torch.rand((), generator=generator) < 0.5:
            words += _filler(generator)
    asked = people[int(torch.randint(count, (), generator=generator))]
    answer = words[words.index(NAMES[asked]) + 3]
    return words + ["where", "does", NAMES[asked], "live", "?", answer, "."]


def story_tokens(num_tokens: int, seed: int = 0) -> torch.Tensor:
    """A stream of exactly ``num_tokens`` token ids (indices into :data:`VOCAB`), whole stories
    cut at the end; seeded, so the same ``seed`` gives the same stream on every machine."""
    if num_tokens < 1:
        raise ValueError(f"num_tokens must be >= 1, got {num_tokens}")
    generator = torch.Generator().manual_seed(seed)
    index = {word: i for i, word in enumerate(VOCAB)}
    ids: list[int] = []
    while len(ids) < num_tokens:
        ids += [index[word] for word in story(generator)]
    return torch.tensor(ids[:num_tokens])
