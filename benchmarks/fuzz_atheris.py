"""Coverage-guided fuzzing (libFuzzer, through atheris) of the file readers: the targets of
tests/test_fuzz_readers.py (real NYU Depth v2 files, and files in the Cityscapes, folder, MTAN, NYUD_MT,
prediction-file, config and checkpoint formats), each read by the code the CLI uses.

    .venv/bin/pip install -c constraints.txt atheris          # manylinux wheels; no compiler needed
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fuzz_atheris.py --seconds 300 [--out results/fuzz.json]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fuzz_atheris.py --target nyuv2:mat --seconds 60
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fuzz_atheris.py --list

The time is split evenly over the targets (--target to pick some); each target fuzzes in its own process
(libFuzzer ends the process when it is done; each start costs a few seconds of imports, not counted),
from a corpus of its seed file. sosd's own modules are instrumented for coverage (PIL, numpy, h5py, torch
are not).
A crash is any exception other than our error types (DataError / SOSDError / ConfigError) or an error
message that names no file of the dataset; libFuzzer saves the input as <artifacts>/crash-<sha1> and the
table shows the exception. Prints, per target, the inputs run (all without a crash unless reported).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREFIX_GROUP = {"folder": "folder", "nyudmt": "nyudmt", "mtan": "mtan", "nyuv2": "nyuv2", "cityscapes": "cityscapes",
                "predictions": "predictions", "read_image": "read_image", "config": "run", "checkpoint": "run"}


def worker(target: str, seconds: int, counts_path: Path, artifacts: Path) -> None:
    """Fuzz one target in this process (libFuzzer exits it at the end)."""
    import atheris

    sys.path.insert(0, str(ROOT))
    with atheris.instrument_imports(include=["sosd"]):
        import sosd.config  # noqa: F401
        import sosd.data.cityscapes  # noqa: F401
        import sosd.data.folder  # noqa: F401
        import sosd.data.nyu  # noqa: F401
        import sosd.data.nyu_folders  # noqa: F401
        import sosd.eval.prediction_files  # noqa: F401
        import sosd.inference  # noqa: F401
        import sosd.checkpoint  # noqa: F401
    from tests.test_fuzz_readers import Readers

    work = Path(tempfile.mkdtemp(prefix="sosd-fuzz-"))
    readers = Readers(work / "data", groups=(PREFIX_GROUP[target.split(":")[0]],))
    corpus = work / "corpus"
    corpus.mkdir()
    (corpus / "seed").write_bytes(readers.seed(target))
    counts = {target: 0, "errors": 0}
    last = [time.monotonic()]

    def one_input(data: bytes) -> None:
        counts[target] += 1
        if time.monotonic() - last[0] > 0.5:  # libFuzzer exits without Python's atexit: save as we go
            counts_path.write_text(json.dumps(counts))
            last[0] = time.monotonic()
        if readers.run(target, data) is not None:
            counts["errors"] += 1

    counts_path.write_text(json.dumps(counts))
    max_len = len(readers.seed(target)) + 4096
    atheris.Setup([sys.argv[0], f"-max_total_time={seconds}", f"-max_len={max_len}", "-timeout=60",
                   "-rss_limit_mb=6144", f"-artifact_prefix={artifacts}/", "-print_final_stats=1", str(corpus)],
                  one_input)
    atheris.Fuzz()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=int, default=300, help="total fuzzing time, split over the groups")
    p.add_argument("--target", action="append", help="fuzz only this target (repeatable; see --list)")
    p.add_argument("--artifacts", default=str(ROOT / "results" / "fuzz_artifacts"), help="crash inputs go here")
    p.add_argument("--out", help="write the per-target counts as JSON here")
    p.add_argument("--list", action="store_true", help="list the targets and exit")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--counts", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        worker(a.worker, a.seconds, Path(a.counts), Path(a.artifacts))
        return 0
    sys.path.insert(0, str(ROOT))
    from tests.test_fuzz_readers import TARGETS

    if a.list:
        print("\n".join(TARGETS))
        return 0
    targets = a.target or list(TARGETS)
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        print(f"unknown targets {unknown}; see --list", file=sys.stderr)
        return 2
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("atheris is not installed: .venv/bin/pip install -c constraints.txt atheris", file=sys.stderr)
        return 2
    Path(a.artifacts).mkdir(parents=True, exist_ok=True)
    per = max(5, a.seconds // len(targets))
    rows, crashed = [], False
    for g in targets:
        with tempfile.TemporaryDirectory() as t:
            counts_path = Path(t) / "counts.json"
            t0 = time.monotonic()
            proc = subprocess.run([sys.executable, __file__, "--worker", g, "--seconds", str(per), "--counts",
                                   str(counts_path), "--artifacts", a.artifacts],
                                  env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")},
                                  capture_output=True, text=True)
            wall = time.monotonic() - t0
            counts = json.loads(counts_path.read_text()) if counts_path.is_file() else {}
        done = re.search(r"Done (\d+) runs in (\d+) second", proc.stderr)
        crash = None
        if proc.returncode != 0:
            crashed = True
            tail = proc.stderr[proc.stderr.find("=== Uncaught Python exception"):] if \
                "Uncaught Python exception" in proc.stderr else proc.stderr[-3000:]
            crash = tail[:3000]
        rows.append({"target": g, "seconds": per, "wall_s": round(wall, 1), "returncode": proc.returncode,
                     "runs": int(done.group(1)) if done else counts.get(g, 0),
                     "rejected_with_our_error": counts.get("errors"), "crash": crash})
        status = "CRASH" if crash else "no crash"
        print(f"{g:40s} {rows[-1]['runs']:8d} inputs in {per:4d} s ({counts.get('errors', 0)} refused with a "
              f"clear error): {status}", flush=True)
        if crash:
            print(crash, file=sys.stderr)
    total = sum(r["runs"] for r in rows)
    print(f"total: {total} inputs over {len(rows)} targets, {'crashes found' if crashed else 'no crash'}")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps({"total_runs": total, "targets": rows}, indent=1) + "\n")
    return 1 if crashed else 0


if __name__ == "__main__":
    raise SystemExit(main())
