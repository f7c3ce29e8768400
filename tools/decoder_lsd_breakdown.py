"""Where a spectrogram decoder's log-spectral distance comes from: the predicted spectrogram itself, then
Griffin-Lim without and with the silence gate, over all frames, the digitally silent ones (more than 60 dB
below the file's loudest) and the rest. docs/decoders.md quotes it.

    python tools/decoder_lsd_breakdown.py RUN DECODERS [N_FILES]   # e.g. runs/demo/vgim-small runs/dec-final 40
"""

from __future__ import annotations

import sys

import librosa
import numpy as np

import vgim
from vgim.data.source import open_corpus
from vgim.evaluate.evaluation import train_test_split
from vgim.interpret.decoders import load_decoders
from vgim.interpret.spectra import LSD_EPS, power_spectrogram
from vgim.objective.spectrogram import SpectrogramDecoder, griffin_lim


def _db(wave: np.ndarray) -> np.ndarray:
    return 10 * np.log10(power_spectrogram(wave) + LSD_EPS)


def main(run: str, decoders: str, n_files: int = 40) -> None:
    model = vgim.load(run)
    assert model.config is not None
    _, test, _ = train_test_split(open_corpus(model.config.data, progress=False), 0)
    waves = list(test.waves)[:n_files]
    print(f"{len(waves)} held-out files; per-frame RMS dB error, mean over frames (all / silent / active)")
    for m, dec in load_decoders(decoders).items():
        if not isinstance(dec, SpectrogramDecoder):
            raise SystemExit(f"{decoders}: module {m + 1} is not a spectrogram decoder")
        o = dec.options
        rows: dict[str, list[np.ndarray]] = {"predicted": [], "Griffin-Lim": [], "Griffin-Lim + gate": []}
        silent_masks = []
        for w in waves:
            c = model.encode_wave(w, upto=m)[m].c
            ref = _db(w)
            mags = dec.magnitudes(c, len(w))[0]
            plain = librosa.griffinlim(
                mags, n_iter=o.griffin_lim_iters, hop_length=o.hop, n_fft=o.n_fft, length=len(w), random_state=0
            )
            outs = {"predicted": dec.power_db(c, len(w))[0], "Griffin-Lim": _db(plain)}
            outs["Griffin-Lim + gate"] = _db(griffin_lim(mags, o, len(w)))
            for k, est in outs.items():
                rows[k].append(np.sqrt(np.mean((ref - est) ** 2, axis=0)))
            silent_masks.append(ref.max(axis=0) < ref.max() - 60)
        silent = np.concatenate(silent_masks)
        print(f"m{m + 1}: {100 * silent.mean():.1f} % of the frames silent")
        for k, per_file in rows.items():
            file_means = [float(np.mean(e)) for e in per_file]
            sil = np.concatenate(per_file)[silent]
            act = np.concatenate(per_file)[~silent]
            print(f"  {k:<20} {np.mean(file_means):5.2f} / {sil.mean():5.2f} / {act.mean():5.2f} dB")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:4]))
