"""Train finished runs of the claims study again from their committed config and compare their test scores
with the committed ones: on one machine a run is a pure function of its config and seed (bit for bit), and
the retrained folders hold the weights git does not keep (what ``sosd probe`` needs).

    .venv/bin/python benchmarks/reproduce_study_runs.py street-sosd-b1000-seed0 street-mtl-b1000-seed0
    .venv/bin/python benchmarks/reproduce_study_runs.py --out /tmp/repro street-sosd-b1000-seed{0,1,2,3,4}

Writes ``<out>/<run>/`` (an ordinary run folder with checkpoints) and prints, per run, the largest absolute
difference of any test metric against ``results/study/runs/<run>/test_metrics.json``.
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run names under results/study/runs")
    p.add_argument("--out", default="/tmp/sosd_reproduce", help="where the retrained runs go")
    p.add_argument("--committed", default=str(ROOT / "results" / "study" / "runs"))
    args = p.parse_args()

    import torch

    from sosd.ablation.harness import run_row, test_metrics
    from sosd.config import load_config

    torch.set_num_threads(1)  # as the study trains
    report = {}
    for name in args.runs:
        ref_dir = Path(args.committed) / name
        if not (ref_dir / "config.yaml").is_file() or not (ref_dir / "test_metrics.json").is_file():
            print(f"{name}: no finished run in {ref_dir} (config.yaml and test_metrics.json)", file=sys.stderr)
            return 2
        cfg = load_config(ref_dir / "config.yaml", [f"train.out_dir={args.out}"])
        run_row(cfg)
        mine, ref = test_metrics(cfg), json.loads((ref_dir / "test_metrics.json").read_text())
        diffs = {k: abs(mine[k] - v) for k, v in ref.items() if isinstance(v, float) and isinstance(mine.get(k), float)}
        report[name] = max(diffs.values())
        print(f"{name}: largest |difference| of {len(diffs)} test metrics vs committed: {report[name]:.3g}", flush=True)
    (Path(args.out) / "reproduce.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
