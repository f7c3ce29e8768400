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
    "$VENV/bin/python" -m pip install --quiet -e ".[dev,prompts]"
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

# The prompts tests (tests/test_prompts.py) read Debian's Asterisk voice prompts (English and Spanish G.722,
# about 24 MB) and the English transcripts, and skip without them. Install them when they are missing and we
# are root with apt-get; never fail because of it. `vgim data prompts` itself never installs anything.
PROMPT_PACKAGES="asterisk-core-sounds-en-g722 asterisk-core-sounds-es-g722 asterisk-core-sounds-en"
install_prompts() {
  if [ -f /usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz ] \
    && [ -d /usr/share/asterisk/sounds/en_US_f_Allison ] && [ -d /usr/share/asterisk/sounds/es_MX_f_Allison ]; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's Asterisk prompts for the prompts tests (apt-get) ..."
    # shellcheck disable=SC2086
    local get="DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PROMPT_PACKAGES"
    if eval "$get" >/dev/null 2>&1 \
      || { DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 && eval "$get" >/dev/null 2>&1; }; then
      return 0
    fi
  fi
  echo "the Asterisk prompts ($PROMPT_PACKAGES) are not installed and could not be: tests/test_prompts.py will skip"
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
    install_prompts
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
