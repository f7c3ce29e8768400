"""The words of the synthetic corpus: three syllables ``{b, d, g} x {a, i, u}`` and their train/test split."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

__all__ = [
    "ALL_WORDS",
    "CONSONANTS",
    "SYLLABLES",
    "TEST_FRACTION",
    "VOWELS",
    "find_cover",
    "split_syllables",
    "split_words",
    "word_labels",
]

CONSONANTS: tuple[str, ...] = ("b", "d", "g")
VOWELS: tuple[str, ...] = ("a", "i", "u")
#: The 9 syllables, consonant-major: ``("ba", "bi", "bu", "da", ...)``.
SYLLABLES: tuple[str, ...] = tuple(c + v for c in CONSONANTS for v in VOWELS)
#: All 729 words, sorted: ``("bababa", "bababi", ...)``.
ALL_WORDS: tuple[str, ...] = tuple("".join(s) for s in itertools.product(SYLLABLES, repeat=3))

#: Fraction of word types held out for the test split.
TEST_FRACTION = 0.2


def split_syllables(word: str) -> tuple[str, str, str]:
    """``"badigu"`` or ``"ba-di-gu"`` -> ``("ba", "di", "gu")``; ValueError for anything else."""
    w = word.replace("-", "").strip().lower()
    syl = tuple(w[i : i + 2] for i in range(0, len(w), 2))
    if len(w) != 6 or any(s not in SYLLABLES for s in syl):
        raise ValueError(f"not a corpus word (3 syllables from {', '.join(SYLLABLES)}): {word!r}")
    return syl[0], syl[1], syl[2]


def word_labels(word: str) -> dict[str, str]:
    """Manifest labels of a word: ``word``, ``syllables``, ``consonants`` and ``vowels`` (``"ba-di-gu"`` style)."""
    syl = split_syllables(word)
    return {
        "word": "".join(syl),
        "syllables": "-".join(syl),
        "consonants": "-".join(s[0] for s in syl),
        "vowels": "-".join(s[1] for s in syl),
    }


def find_cover(pool: Sequence[str], rng: np.random.Generator) -> tuple[str, str, str] | None:
    """Three words of ``pool`` that together contain all 9 syllables (random among those found first)."""
    pool_set = set(pool)
    order = [pool[i] for i in rng.permutation(len(pool))]
    candidates = [w for w in order if len(set(split_syllables(w))) == 3]
    for i, w1 in enumerate(candidates):
        s1 = set(split_syllables(w1))
        for w2 in candidates[i + 1 :]:
            s2 = set(split_syllables(w2))
            if s1 & s2:
                continue
            rest = sorted(set(SYLLABLES) - s1 - s2)
            for perm in itertools.permutations(rest):
                w3 = "".join(perm)
                if w3 in pool_set:
                    return w1, w2, w3
    return None


def split_words(seed: int = 0) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The train/test split of the 729 word types (by word identity).

    A seeded ``TEST_FRACTION`` (20 %, 146 words) of the types is held out for testing. The split is redrawn
    until both parts contain three words that together cover all 9 syllables, so every syllable can occur
    in both splits of even a tiny corpus.

    Returns
    -------
    train_words, test_words
        Sorted tuples of words like ``"badigu"``; disjoint, together all of :data:`ALL_WORDS`.
    """
    rng = np.random.default_rng([seed, 101])
    n_test = round(TEST_FRACTION * len(ALL_WORDS))
    for _ in range(1000):
        perm = rng.permutation(len(ALL_WORDS))
        test = tuple(sorted(ALL_WORDS[i] for i in perm[:n_test]))
        train = tuple(sorted(ALL_WORDS[i] for i in perm[n_test:]))
        if find_cover(test, rng) is not None and find_cover(train, rng) is not None:
            return train, test
    raise RuntimeError("could not draw a train/test split covering all syllables")  # pragma: no cover
