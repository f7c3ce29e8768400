"""The label pairing measured on real alignments: the English Asterisk prompts of ``vgim data prompts``.

For every feature source (MFCC, and the last module of a randomly initialised encoder of ``--preset``) and
both pairings of :func:`vgim.evaluate.frame_probe.align_features` (``gim``: the last ``len(labels)``
outputs; ``centre``: by frame centres), it reports

* how many feature frames the ``gim`` pairing moves each label frame relative to ``centre`` (utterances per
  shift, and the share of label frames that get another feature vector);
* the mean log energy (dB) of the 10 ms of audio around the paired frames' centres, for the frames labelled
  silence at the utterance ends and for the frames labelled a phone (a wrong pairing blurs the two);
* the frame phone accuracy of the GIM code's probe (all frames, one utterance per Adam step, lr 1e-4, 20
  epochs, raw features; ``--protocol``) trained on the train split and scored on the test split.

    vgim data prompts --out /work/prompts-data --languages en
    OMP_NUM_THREADS=1 python tools/pairing_check.py /work/prompts-data --preset cpc
    OMP_NUM_THREADS=1 python tools/pairing_check.py /work/prompts-data --preset '' --run pretrained:vgim-prompts
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

import vgim
from vgim.config import load_config
from vgim.data.librispeech import corpus_alignments, load_librispeech, read_alignments, read_split
from vgim.evaluate.baselines import MFCC_FRAMES, mfcc_features
from vgim.evaluate.evaluation import random_init_model
from vgim.evaluate.frame_probe import LABEL_HOP, PAIRINGS, align_features, frame_phone_probe
from vgim.experiments.librispeech.protocol import PROTOCOLS
from vgim.frames import FrameInfo
from vgim.model.stack import Stack


def end_silence(labels: np.ndarray) -> np.ndarray:
    """Mask of the label frames in the silence (class 0) runs at the start and the end of an utterance."""
    speech = np.flatnonzero(labels != 0)
    mask = np.zeros(labels.shape[0], dtype=bool)
    if speech.size:
        mask[: speech[0]] = True
        mask[speech[-1] + 1 :] = True
    return mask


def centre_energy_db(wave: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Log energy (dB) of the 160 samples around each centre (clipped to the wave)."""
    lo = np.clip(np.round(centres).astype(np.int64) - LABEL_HOP // 2, 0, max(wave.shape[0] - LABEL_HOP, 0))
    frames = np.stack([wave[s : s + LABEL_HOP] for s in lo])
    return 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-10)


def pairing_rows(feats: np.ndarray, frames: FrameInfo, n_labels: int) -> dict[str, np.ndarray]:
    """The feature frame index (mean of the indices, for a finer hop) each pairing gives each label frame."""
    index = np.arange(feats.shape[0], dtype=np.float64)[:, None]
    return {p: align_features(index, frames, n_labels, mode="mean", pairing=p)[:, 0] for p in PAIRINGS}


def measure(name: str, feats_of, frames: FrameInfo, train, test, phones_tr, phones_te, protocol: str) -> list[str]:  # noqa: ANN001
    t0 = time.perf_counter()
    ftr = [feats_of(w) for w in train.waves]
    fte = [feats_of(w) for w in test.waves]
    t_feat = time.perf_counter() - t0
    shifts: Counter[float] = Counter()
    moved = total = 0
    energy: dict[str, dict[str, list[np.ndarray]]] = {p: {"end silence": [], "phone": []} for p in PAIRINGS}
    for f, wave, lab in zip(ftr + fte, list(train.waves) + list(test.waves), phones_tr + phones_te, strict=True):
        rows = pairing_rows(f, frames, lab.shape[0])
        d = rows["gim"] - rows["centre"]
        shifts[float(np.median(d))] += 1
        moved += int(np.count_nonzero(d))
        total += d.shape[0]
        mask = end_silence(lab)
        for p in PAIRINGS:
            e = centre_energy_db(wave, frames.offset + rows[p] * frames.hop)
            energy[p]["end silence"].append(e[mask])
            energy[p]["phone"].append(e[lab != 0])
    out = [
        f"{name}: hop {frames.hop}, offset {frames.offset:g}; features {t_feat:.0f} s; gim vs centre: "
        + ", ".join(f"{k:+g} frames in {v} utterances" for k, v in sorted(shifts.items()))
        + f"; {moved} of {total} label frames ({100 * moved / total:.1f}%) get another feature vector"
    ]
    settings = PROTOCOLS[protocol]
    for p in PAIRINGS:
        t1 = time.perf_counter()
        res = frame_phone_probe(
            ftr,
            phones_tr,
            fte,
            phones_te,
            frames=frames,
            mode=settings.align,
            pairing=p,
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            lr=settings.lr,
            standardise=settings.standardise,
            init=settings.init,
            features=name,
        )
        sil = np.concatenate(energy[p]["end silence"])
        ph = np.concatenate(energy[p]["phone"])
        out.append(
            f"| {name} | {p} | {100 * res.accuracy:.1f} | {100 * res.chance:.1f} | {res.n_train} / {res.n_test} | "
            f"{sil.mean():.1f} ({sil.size}) | {ph.mean():.1f} ({ph.size}) | {time.perf_counter() - t1:.0f} s |"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="the folder of `vgim data prompts --out DIR` (English aligned)")
    ap.add_argument("--preset", default="cpc", help="architecture of the random-init encoder ('' for MFCC only)")
    ap.add_argument("--run", help="also every module of this trained model (a run directory or pretrained:NAME)")
    ap.add_argument("--protocol", default="gim", choices=list(PROTOCOLS), help="the phone probe's schedule")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = Path(args.data)
    labels = read_alignments(root / "converted_aligned_phones.txt", n_classes=None)
    train = load_librispeech(root, "prompts", utterances=read_split(root / "train_split.txt"), progress=False)
    test = load_librispeech(root, "prompts", utterances=read_split(root / "test_split.txt"), progress=False)
    ptr, pte = corpus_alignments(train, labels), corpus_alignments(test, labels)
    print(
        f"{len(train)} train / {len(test)} test utterances, {sum(map(len, ptr))} / {sum(map(len, pte))} label "
        f"frames; phone probe: protocol {args.protocol}"
    )
    head = "| features | pairing | phone acc. % | majority % | frames train / test | end-silence dB (n) | "
    print(head + "phone dB (n) | probe time |\n|---|---|---:|---:|---:|---:|---:|---:|")
    lines = measure("MFCC", mfcc_features, MFCC_FRAMES, train, test, ptr, pte, args.protocol)
    if args.preset:
        model = random_init_model(Stack(load_config(args.preset, []).model), args.seed)

        def last_module(wave: np.ndarray) -> np.ndarray:
            return model.extract_features(wave)[-1].float().numpy()

        lines += measure(
            f"random-init {args.preset} m{model.n_modules}",
            last_module,
            model.frames[-1],
            train,
            test,
            ptr,
            pte,
            args.protocol,
        )
    if args.run:
        trained = vgim.load(args.run, "cpu")
        for m in range(trained.n_modules):

            def module(wave: np.ndarray, m: int = m) -> np.ndarray:
                return trained.extract_features(wave)[m].float().numpy()

            name = f"{args.run.removeprefix('pretrained:').rstrip('/').split('/')[-1]} m{m + 1}"
            lines += measure(name, module, trained.frames[m], train, test, ptr, pte, args.protocol)
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
