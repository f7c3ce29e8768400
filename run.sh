#!/usr/bin/env bash
# Set-up and entry point. `bash run.sh demo` runs the main job; `bash run.sh test` runs lint, types and tests.
# Both create or refresh .venv: the pinned CPU torch first (a newer or unpinned torch pulls a CUDA
# build of several GB), then vgim with its dependencies.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
VENV=.venv
TORCH=torch==2.13.0

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.vgim-installed"
  local want
  want=$(cat pyproject.toml run.sh | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet "$TORCH"
    "$VENV/bin/python" -m pip install --quiet -e ".[dev]"
    echo "$want" > "$stamp"
  fi
}

cmd=${1:-demo}
shift || true
case "$cmd" in
  demo)
    setup
    exec "$VENV/bin/vgim" demo "$@"
    ;;
  test)
    setup
    "$VENV/bin/ruff" check src tests
    "$VENV/bin/ruff" format --check src tests
    "$VENV/bin/mypy"
    exec "$VENV/bin/python" -m pytest -q "$@"
    ;;
  setup)
    setup
    ;;
  *)
    setup
    exec "$VENV/bin/vgim" "$cmd" "$@"
    ;;
esac
