#!/usr/bin/env bash
# The decoder comparison of docs/decoders.md: each decoder kind on the demo's V-GIM and GIM runs and, with
# THESIS=DIR (a `vgim experiment thesis` output folder), the spectrogram decoders of its seed-0 runs on the
# thesis corpus. Every `vgim decode` prints its table and writes OUT/<run>-<kind>/metrics.json; the last step
# prints the comparison table from those files.
#   DEMO=runs/demo bash tools/decoder_study.sh               # after `bash run.sh demo`
#   KINDS="spectrogram" THESIS=runs/thesis-improved bash tools/decoder_study.sh
#   RUNS=vgim-small KINDS="waveform thesis" bash tools/decoder_study.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${DEMO:-runs/demo}
OUT=${OUT:-runs/decoders}
KINDS=${KINDS:-spectrogram waveform thesis}
STEPS=${STEPS:-2000}
RUNS=${RUNS:-vgim-small gim-small}
VGIM=${VGIM:-.venv/bin/vgim}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
for run in $RUNS; do
  for kind in $KINDS; do
    [ -d "$DEMO/$run" ] || { echo "no $DEMO/$run: run the demo first (bash run.sh demo)" >&2; exit 1; }
    echo "== $run, $kind decoder"
    $VGIM decode "$DEMO/$run" --kind "$kind" --steps "$STEPS" --out "$OUT/$run-$kind" --quiet
  done
done
if [ -n "${THESIS:-}" ]; then
  for run in v-gim-seed0 gim-seed0; do
    echo "== thesis corpus, $run, spectrogram decoder"
    $VGIM decode "$THESIS/$run" --corpus thesis --steps "$STEPS" --out "$OUT/thesis-$run-spectrogram" --quiet
  done
fi
.venv/bin/python tools/decoder_table.py "$OUT"/*/metrics.json
