#!/usr/bin/env bash
# The test suite: set up .venv if needed, then run pytest (fast suite, < 10 min on 2 CPU cores).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/env.sh"
cd "$root"
exec .venv/bin/python -m pytest -q "$@"
