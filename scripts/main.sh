#!/usr/bin/env bash
# The main job: set up .venv if needed, train ESOSD-Net on the indoor synthetic scenes (small backbone),
# evaluate on held-out scenes and write runs/esosd_indoor_small/ (checkpoints, TensorBoard, metrics, pictures).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/env.sh"
cd "$root"
exec .venv/bin/sosd train --config configs/synthetic/esosd_indoor_small.yaml --overwrite "$@"
