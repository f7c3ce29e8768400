"""The probe protocol of the LibriSpeech recipe, setting by setting, and its two named versions.

``"gim"`` (the default) follows the GIM paper's code (Loewe et al. 2019, ``GreedyInfoMax/audio/
linear_classifiers/logistic_regression_{phones,speaker}.py``, which reproduces the CPC paper's probes):

* phones: a linear classifier on every labelled 10 ms frame of the training utterances, one utterance per
  Adam step in file order, lr 1e-4, 20 epochs, Xavier-normal initial weights, features not standardised;
  frames and labels paired as ``output[-len(labels):]`` (``pairing="gim"``, right-aligned);
* speakers: one vector per 20480-sample window (the GIM/CPC training crop), a linear classifier trained by
  Adam, lr 1e-3 (Adam's default, as the code), 50 epochs, batches of 8 windows (the code's batch size).

``"sampled"`` is what the recipe did before: a seeded uniform sample of 250 000 / 100 000 label frames,
shuffled mini-batches of 1024, Adam lr 1e-3, 10 epochs, standardised features, zero initial weights,
``pairing="centre"`` (label frame ``j`` gets the module frames whose centres fall in it); speakers by
scikit-learn's lbfgs logistic regression on the mean of each whole utterance.

Where the ``"gim"`` protocol departs from the code (each a choice a reader may want to change):

* the speaker vector is the **mean** over the window's frames; the GIM code flattens the window's 128
  context vectors into one (``context.reshape(batch, -1)``, ``n_features = 256 * 128``): use
  ``speaker_pool="flat"`` for that;
* every non-overlapping window of an utterance is one example, encoded once (``[0, W)``, ``[W, 2W)``, ...;
  an utterance shorter than a window is one window); the code draws one random window per utterance per
  epoch (start a multiple of 160) and re-encodes it;
* intermediate modules (the code probes phones on the last module only) pair as the last ``r L`` outputs
  in groups of ``r = 160 / hop`` (:func:`vgim.evaluate.frame_probe.pairing_shift`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from vgim.evaluate.frame_probe import PAIRINGS, AlignMode, Pairing
from vgim.evaluate.linear import Init

__all__ = ["PROTOCOLS", "SPEAKER_POOLS", "ProbeSettings", "SpeakerClassifier", "SpeakerPool", "resolve_protocol"]

#: ``"mean"``/``"last"`` of the window's (or utterance's) frames; ``"flat"``: its frames concatenated (the
#: GIM code; needs windows, every one the same number of frames).
SpeakerPool = Literal["mean", "last", "flat"]
SPEAKER_POOLS: tuple[SpeakerPool, ...] = ("mean", "last", "flat")
#: ``"adam"``: the torch linear classifier (:mod:`vgim.evaluate.linear`); ``"lbfgs"``: scikit-learn's.
SpeakerClassifier = Literal["adam", "lbfgs"]


@dataclass(frozen=True)
class ProbeSettings:
    """Every setting of the two probes.

    Attributes
    ----------
    protocol
        The named protocol these settings start from (:data:`PROTOCOLS`), ``"+"`` when some were changed.
    pairing, align
        Which module frames pair with a 10 ms label frame (:func:`vgim.evaluate.frame_probe.align_features`).
    epochs, batch_size, lr
        The phone probe's Adam schedule; ``batch_size=None``: one utterance per step, in file order.
    standardise, init
        Whether the Adam probes standardise the features with training statistics, and their initial weights.
    max_train_frames, max_test_frames
        Label frames of the phone probe: a seeded uniform sample of at most this many (``None``: all).
    speaker_window
        Samples per speaker example (each window encoded on its own); ``None``: the whole utterance.
    speaker_pool
        One vector per window / utterance (:data:`SpeakerPool`).
    speaker_classifier, speaker_epochs, speaker_batch_size, speaker_lr
        The speaker probe (the schedule is the ``"adam"`` classifier's).
    seed
        Seed of the frame sample, the shuffling and the initial weights.
    """

    protocol: str
    pairing: Pairing
    align: AlignMode
    epochs: int
    batch_size: int | None
    lr: float
    standardise: bool
    init: Init
    max_train_frames: int | None
    max_test_frames: int | None
    speaker_window: int | None
    speaker_pool: SpeakerPool
    speaker_classifier: SpeakerClassifier
    speaker_epochs: int
    speaker_batch_size: int
    speaker_lr: float
    seed: int = 0

    def __post_init__(self) -> None:
        if self.pairing not in PAIRINGS:
            raise ValueError(f"pairing must be one of {', '.join(PAIRINGS)}, got {self.pairing!r}")
        if self.speaker_pool not in SPEAKER_POOLS:
            raise ValueError(f"speaker_pool must be one of {', '.join(SPEAKER_POOLS)}, got {self.speaker_pool!r}")
        if self.speaker_pool == "flat" and self.speaker_window is None:
            raise ValueError("speaker_pool='flat' needs speaker_window (every example the same length)")
        if self.speaker_classifier not in ("adam", "lbfgs"):
            raise ValueError(f"speaker_classifier must be 'adam' or 'lbfgs', got {self.speaker_classifier!r}")
        for name in ("epochs", "speaker_epochs", "speaker_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("batch_size", "max_train_frames", "max_test_frames", "speaker_window"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {value}")
        if not (self.lr > 0 and self.speaker_lr > 0):
            raise ValueError(f"learning rates must be > 0, got {self.lr}, {self.speaker_lr}")

    def describe(self) -> dict[str, Any]:
        """The settings as a JSON-able dict (``results.json``)."""
        return dataclasses.asdict(self)


PROTOCOLS: dict[str, ProbeSettings] = {
    "gim": ProbeSettings(
        protocol="gim",
        pairing="gim",
        align="mean",
        epochs=20,
        batch_size=None,
        lr=1e-4,
        standardise=False,
        init="xavier",
        max_train_frames=None,
        max_test_frames=None,
        speaker_window=20480,
        speaker_pool="mean",
        speaker_classifier="adam",
        speaker_epochs=50,
        speaker_batch_size=8,
        speaker_lr=1e-3,
    ),
    "sampled": ProbeSettings(
        protocol="sampled",
        pairing="centre",
        align="mean",
        epochs=10,
        batch_size=1024,
        lr=1e-3,
        standardise=True,
        init="zeros",
        max_train_frames=250_000,
        max_test_frames=100_000,
        speaker_window=None,
        speaker_pool="mean",
        speaker_classifier="lbfgs",
        speaker_epochs=50,
        speaker_batch_size=8,
        speaker_lr=1e-3,
    ),
}

#: Settings that take 0 for "none": all frames, the whole utterance, one utterance per step.
_ZERO_IS_NONE = ("batch_size", "max_train_frames", "max_test_frames", "speaker_window")


def resolve_protocol(protocol: str | ProbeSettings = "gim", **changes: Any) -> ProbeSettings:
    """The settings of ``protocol`` (a name of :data:`PROTOCOLS` or settings) with ``changes`` applied.

    A change of ``None`` keeps the protocol's value; for ``batch_size``, ``max_train_frames``,
    ``max_test_frames`` and ``speaker_window``, 0 stands for ``None`` (one utterance per step, all frames, the
    whole utterance). The result's ``protocol`` gets a ``"+"`` when a change differs from the protocol.

    Raises
    ------
    ValueError
        An unknown protocol name or setting, or an invalid value.
    """
    if isinstance(protocol, str):
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown probe protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
        base = PROTOCOLS[protocol]
    else:
        base = protocol
    fields = {f.name for f in dataclasses.fields(ProbeSettings)} - {"protocol"}
    unknown = sorted(set(changes) - fields)
    if unknown:
        raise ValueError(f"unknown probe settings {unknown}; expected some of {sorted(fields)}")
    given = {k: v for k, v in changes.items() if v is not None}
    given = {k: (None if k in _ZERO_IS_NONE and v == 0 else v) for k, v in given.items()}
    differs = any(getattr(base, k) != v for k, v in given.items() if k != "seed")
    name = base.protocol.rstrip("+") + ("+" if differs or base.protocol.endswith("+") else "")
    return dataclasses.replace(base, protocol=name, **given)
