from __future__ import annotations

import numpy as np

from conftest import tiny_config
from vgim.data.corpus import AudioCorpus, Utterance
from vgim.evaluate.evaluation import EvaluationSplit, model_feature_sets
from vgim.evaluate.probes import ProbeTask, run_probes
from vgim.evaluate.supervised import train_supervised
from vgim.model import Stack


def _tone_corpus(n: int, seed: int) -> AudioCorpus:
    """Three 0.25 s 'syllables' per utterance, each a tone whose pitch class is the label (lo, mid, hi)."""
    rng = np.random.default_rng(seed)
    freqs = {"lo": 200.0, "mid": 700.0, "hi": 2000.0}
    utts, waves = [], []
    t = np.arange(4000) / 16000
    for i in range(n):
        names = [str(x) for x in rng.choice(list(freqs), size=3)]
        wave = np.concatenate([0.5 * np.sin(2 * np.pi * freqs[s] * t + rng.uniform(0, 6)) for s in names])
        waves.append((wave + 0.05 * rng.standard_normal(wave.shape)).astype(np.float32))
        utts.append(Utterance(f"u{i}.wav", {"syllables": "-".join(names)}, [(0, 4000), (4000, 8000), (8000, 12000)]))
    return AudioCorpus(utts, waves, 16000, [])


def test_supervised_encoder_beats_random_init() -> None:
    cfg = tiny_config()
    train, test = _tone_corpus(24, 0), _tone_corpus(12, 1)
    split = EvaluationSplit(train, test)
    task = [ProbeTask("syllable", "syllables", "segment")]
    sup = train_supervised(cfg, train, steps=60, batch_size=8, lr=3e-3, progress=False)
    rand = Stack(cfg.model).eval()
    sets = model_feature_sets(sup, split, "sup") | model_feature_sets(rand, split, "rand")
    lab = [u.labels for u in train.utterances], [u.segments for u in train.utterances]
    tlab = [u.labels for u in test.utterances], [u.segments for u in test.utterances]
    res = {r.features: r.accuracy for r in run_probes(sets, lab[0], lab[1], tlab[0], tlab[1], task)}
    assert res["sup m2"] >= 0.9
    assert res["sup m2"] > res["rand m2"]


def test_greedy_supervised_trains_every_module() -> None:
    import torch

    cfg = tiny_config()
    train = _tone_corpus(8, 0)
    torch.manual_seed(0)
    init = Stack(cfg.model)
    greedy = train_supervised(cfg, train, steps=5, progress=False, greedy=True)
    for m in range(2):
        before = torch.cat([p.flatten() for p in init.blocks[m].parameters()])
        after = torch.cat([p.flatten() for p in greedy.blocks[m].parameters()])
        assert not torch.allclose(before, after), m


def test_a_killed_supervised_run_resumes_to_the_same_weights(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The supervised head trains through the one engine: killed and resumed equals uninterrupted."""
    import torch

    from vgim.evaluate.supervised import UtteranceBatches, supervised_config
    from vgim.train import load_checkpoint, train

    corpus = _tone_corpus(8, 0)
    names = {"lo": 0, "mid": 1, "hi": 2}
    labels = [np.array([names[s] for s in u.labels["syllables"].split("-")]) for u in corpus.utterances]
    batches = UtteranceBatches(corpus.waves, labels, [u.segments for u in corpus.utterances], "segment", 4, seed=0)
    for greedy in (False, True):
        cfg = supervised_config(tiny_config(), 3, steps=12, batch_size=4, lr=3e-3, greedy=greedy, seed=0, device="cpu")
        cfg.train.checkpoint_every = 4
        full, part = tmp_path / f"full{greedy}", tmp_path / f"part{greedy}"
        train(cfg, full, batches=batches, progress=False)
        train(cfg, part, batches=batches, progress=False, stop_after=6)
        train(cfg, part, batches=batches, progress=False, resume=True)
        a, b = load_checkpoint(full / "checkpoints" / "last.pt"), load_checkpoint(part / "checkpoints" / "last.pt")
        for key in ("model", "objective"):
            for name, value in a[key].items():
                assert torch.equal(value, b[key][name]), (greedy, key, name)
