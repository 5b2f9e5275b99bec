#!/usr/bin/env bash
# What tests/test_demo_browser.py needs: Debian's Chromium at /usr/bin/chromium (apt, needs root or sudo)
# and, in .venv, the Playwright client and gradio (torch pinned by constraints.txt). It never runs
# `playwright install` (that downloads a browser build from a CDN); the test starts /usr/bin/chromium.
# Idempotent: installs only what is missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [ ! -x /usr/bin/chromium ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "[sosd] /usr/bin/chromium is missing and this is not root: apt-get install chromium as root" >&2
      exit 1
    fi
  fi
  echo "[sosd] installing Debian's chromium"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  bash scripts/env.sh  # creates .venv and installs sosd[all] (gradio included)
fi
if ! .venv/bin/python -c "import playwright.sync_api, gradio" >/dev/null 2>&1; then
  echo "[sosd] installing playwright and gradio into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -c constraints.txt "playwright>=1.40" "gradio>=6"
fi
/usr/bin/chromium --version 2>/dev/null
.venv/bin/python -c "import gradio, playwright, torch; print('gradio', gradio.__version__, '| torch', torch.__version__)"
