"""Smoke tests of benchmarks/inference.py and benchmarks/train_step.py: --quick on a tiny size, in a
subprocess; they must exit 0 and write their JSON (and PNG). Timings here mean nothing.

Each starts several Python processes (train_step: one per strategy), so they are marked slow.
Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/export/test_benchmarks_smoke.py --runslow
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(script, *args, timeout=600):
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env["PYTHONPATH"] = str(ROOT / "src") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    return p.stdout


@pytest.mark.slow
def test_inference_benchmark_quick(tmp_path):
    out = tmp_path / "inference.json"
    stdout = _run("inference.py", "--quick", "--size", "64", "96", "--batch", "2", "--threads", "1",
                  "--variants", "mtl", "sosd", "--paths", "eager_no_grad", "bn_folded", "onnxruntime",
                  "--out", str(out))
    res = json.loads(out.read_text())
    assert out.with_suffix(".png").is_file()
    cpu = res["devices"]["cpu"]
    assert cpu["matmul_peak"]["gflops_per_s"] > 0
    assert set(cpu["variants"]) == {"mtl", "sosd"}
    assert cpu["table1_ratios"]["paper_latency_pct"] == pytest.approx(11.8, abs=0.05)
    paths = cpu["paths"]["paths"]
    for p in ("eager_no_grad", "bn_folded", "onnxruntime"):
        assert paths[p]["ok"] and paths[p]["check_vs_eager"]["ok"], paths[p]
    assert "Table 1 ratios" in stdout and res["machine"]["cpu_model"]


@pytest.mark.slow
def test_train_step_benchmark_quick(tmp_path):
    out = tmp_path / "train_step.json"
    stdout = _run("train_step.py", "--quick", "--size", "64", "96", "--batch", "2", "--threads", "1",
                  "--strategies", "joint", "single", "em", "--out", str(out))
    res = json.loads(out.read_text())
    rows = {r["strategy"]: r for r in res["rows"]}
    assert rows["joint"]["time_vs_joint"] == 1.0 and rows["joint"]["ru_maxrss_bytes"] > 0
    assert "alias of joint" in rows["single"]["note"]
    assert set(rows["em"]["median_step_s_by_phase"]) == {"depth", "semantic"}
    assert "fits in 24 GiB" in stdout


def test_gpu_check_dry_run(tmp_path):
    # not slow: one process, a 64x64 xception_small model; every CUDA code path runs on the CPU
    out = tmp_path / "gpu.json"
    stdout = _run("gpu_check.py", "--dry-run", "--out", str(out))
    res = json.loads(out.read_text())
    assert res["machine"]["dry_run"] is True
    secs = res["sections"]
    assert set(secs) == {"amp", "channels_last", "compile", "ddp", "onnxruntime", "table1"}
    for name, r in secs.items():
        assert r.get("ok", True), (name, r)
    assert secs["amp"]["bf16"]["ok"] and secs["ddp"]["ddp_wrapped"] == [True]
    rows = secs["table1"]["rows"]
    assert set(rows) == {"semantic_only", "depth_only", "mtl", "sosd", "esosd"}
    assert all(r["train_step"]["median_ms"] > 0 for r in rows.values())
    assert "all ok" in stdout


def test_gpu_check_without_cuda_exits_cleanly():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    stdout = _run("gpu_check.py")
    assert "CUDA is not available" in stdout
