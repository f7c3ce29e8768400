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

# The browser test (tests/test_report.py) renders the HTML report in headless Chromium and skips without
# it. Install Debian's chromium when it is missing and we are root with apt-get; never fail because of it.
install_chromium() {
  if [ -x /usr/bin/chromium ]; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium for the browser test (apt-get) ..."
    if DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
      && [ -x /usr/bin/chromium ]; then
      return 0
    fi
  fi
  echo "chromium is not installed and could not be installed: the browser test in tests/test_report.py will skip"
  return 0
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
    install_chromium
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
