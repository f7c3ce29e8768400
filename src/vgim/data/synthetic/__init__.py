"""The embedded default corpus: three-syllable nonsense words spoken by espeak-ng voices.

The corpus imitates a thesis corpus of nonsense words: every word has three syllables, each a consonant
from ``{b, d, g}`` followed by a vowel from ``{a, i, u}`` (9 syllables, 729 possible words such as
``"ba-di-gu"``). Words are synthesised with the espeak-ng library shipped by the ``espeakng-loader`` wheel
(driven through :mod:`ctypes`; no system binary is needed) from phoneme input (``[[bA:d'i:gu:]]``), so
espeak says exactly /b d g/ + /ɑ i u/ and never guesses a spelling.

Syllable boundaries are exact: espeak reports the output sample at which every phoneme starts (phoneme
events of the synth callback); a syllable runs from the start of its consonant to the start of the next
consonant (the last one to the pause after the final vowel).

Layout of a corpus folder::

    manifest.csv            # written last (temp file + os.replace): its presence means "complete"
    corpus.json             # parameters and espeak-ng version
    spk0/badigu_0.wav       # <speaker>/<word>_<n>.wav, mono PCM_16 at ``sample_rate``
    ...

``manifest.csv`` columns: ``path`` (relative to the folder), ``word`` (``"badigu"``), ``syllables``
(``"ba-di-gu"``), ``consonants`` (``"b-d-g"``), ``vowels`` (``"a-i-u"``), ``speaker`` (``"spk0"``...),
``pitch`` and ``rate`` (espeak pitch 0-100 and words per minute used for that word), ``split``
(``"train"``/``"test"``), ``segments`` (``"s0:e0;s1:e1;s2:e2"``, sample indices at 16 kHz, end exclusive)
and ``stress`` (index 0-2 of the syllable carrying primary stress).

The train/test split is by word identity: a fixed, seeded 20 % of the 729 word types is held out, so test
words are never heard in training (for any speaker); every syllable occurs in both splits.

Synthesis is deterministic: espeak-ng keeps some generator state between utterances (pitch flutter,
roughness cycle counters, breath-noise filters), so the voices used here switch those features off, and
the same parameters give byte-identical fil

The package: :mod:`~vgim.data.synthetic.words` (the word inventory and the train/test split),
:mod:`~vgim.data.synthetic.espeak` (espeak-ng through :mod:`ctypes` and the corpus voices),
:mod:`~vgim.data.synthetic.render` (one word: :func:`synthesize_word`) and :mod:`~vgim.data.synthetic.corpus`
(the corpus folder: :func:`synthesize_corpus`, :func:`describe_corpus`). Every public name is re-exported here.
"""

from __future__ import annotations

from vgim.data.synthetic.corpus import (
    MANIFEST_COLUMNS,
    SYNTH_VERSION,
    default_corpus_dir,
    describe_corpus,
    synthesize_corpus,
)
from vgim.data.synthetic.espeak import MAX_SPEAKERS
from vgim.data.synthetic.render import synthesize_word
from vgim.data.synthetic.words import ALL_WORDS, CONSONANTS, SYLLABLES, VOWELS, split_words

__all__ = [
    "ALL_WORDS",
    "CONSONANTS",
    "MANIFEST_COLUMNS",
    "MAX_SPEAKERS",
    "SYLLABLES",
    "SYNTH_VERSION",
    "VOWELS",
    "default_corpus_dir",
    "describe_corpus",
    "split_words",
    "synthesize_corpus",
    "synthesize_word",
]
