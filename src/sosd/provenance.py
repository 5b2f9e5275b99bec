"""Where a result came from: the code commit and the machine. Training is bit-reproducible on one machine but
not across CPUs, so every results file (study, ablation, probe) records both."""
from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path


def code_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def env_info() -> dict:
    """The code commit (and whether the checkout had local changes) and the machine: CPU model, cores, the
    instruction set torch dispatches to, torch and Python versions, the date."""
    import torch

    try:
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                    text=True, timeout=10, cwd=Path(__file__).parent).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        dirty = None
    cpu = ""
    try:
        cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "")
    except OSError:
        pass
    return {"commit": code_commit(), "dirty": dirty, "cpu_model": cpu or platform.processor(),
            "cores": os.cpu_count(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def describe(env: dict) -> str:
    """One line for a Markdown results file."""
    return (f"Code: `{env.get('commit', '')[:12]}`{' (with local changes)' if env.get('dirty') else ''}; machine: "
            f"{env.get('cpu_model')}, {env.get('cores')} cores, torch {env.get('torch')} dispatching to "
            f"{env.get('cpu_capability')}; {env.get('date')}.")
