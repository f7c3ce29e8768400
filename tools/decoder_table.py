"""Print docs/decoders.md's comparison table from `vgim decode` outputs: python tools/decoder_table.py M.json ..."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def score(listen: dict, row: str, task: str) -> str:
    """``row``'s accuracy on ``task`` and its share of the original audio's, or ``-`` without it."""
    acc = listen["accuracy"]
    if task not in listen["tasks"] or row not in acc:
        return "-"
    base = acc["original"][task]
    return f"{100 * acc[row][task]:.1f} ({100 * acc[row][task] / base:.0f} %)"


def main(paths: list[str]) -> None:
    print(
        "| run | decoder | module | syllable (% of original) | speaker (% of original) | LSD (dB) | LSD, active frames (dB) | log-mel (dB) |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for p in paths:
        meta = json.loads(Path(p).read_text())
        listen = meta.get("intelligibility") or {"accuracy": {}, "tasks": []}
        acc = listen["accuracy"]

        run = Path(meta["run"]).name
        for e in meta["modules"]:
            row = f"decoded {e['name']}"
            cells = [
                run,
                meta.get("kind", "waveform"),
                e["name"],
                score(listen, row, "syllable"),
                score(listen, row, "speaker"),
            ]
            cells += [f"{e['lsd_db']:.1f}", (f"{e['lsd_active_db']:.1f}" if "lsd_active_db" in e else "-")]
            cells += [f"{e.get('log_mel_db', float('nan')):.1f}"]
            print("| " + " | ".join(cells) + " |")
        if acc:
            ref = "Griffin-Lim of the original"
            for row in ("original", ref, "silence"):
                if row in acc:
                    d = listen["distance"][row]
                    cells = [run, "(reference)", row, score(listen, row, "syllable"), score(listen, row, "speaker")]
                    print("| " + " | ".join(cells + [f"{d['lsd_db']:.1f}", "", f"{d['log_mel_db']:.1f}"]) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
