#!/usr/bin/env bash
# Creates .venv (Python 3.11) if missing and installs sosd with every extra, torch pinned to the CPU build.
# Re-installs only when pyproject.toml or constraints.txt changed (a stamp holds their hash).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${SOSD_PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
  echo "[sosd] creating .venv with $py"
  "$py" -m venv .venv
fi
stamp=".venv/.sosd-installed"
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[sosd] installing sosd[all] into .venv (torch pinned by constraints.txt)"
  .venv/bin/pip install -q --disable-pip-version-check -c constraints.txt torch==2.13.0
  .venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e ".[all]"
  echo "$want" > "$stamp"
fi
