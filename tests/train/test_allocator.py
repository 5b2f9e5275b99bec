"""train.keep_memory: freed activations stay in the process, so the next step does not fault them in."""
import subprocess
import sys

import pytest

# a "training step": six 40 MB activations and their gradients, allocated and freed; 40 MB is above the
# largest mmap threshold glibc adapts to (32 MB)
PROBE = """
import resource, sys, torch
from sosd.train.allocator import keep_freed_memory
ok = keep_freed_memory() if sys.argv[1] == "keep" else None
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
per_step = []
for step in range(6):
    before = faults()
    acts = [torch.ones(10 * 2**20) for _ in range(6)]
    grads = [a * 2 for a in acts]
    del acts, grads
    per_step.append(faults() - before)
print(ok, sum(per_step[2:]))
"""


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    ok, faults = out.stdout.split()
    return ok, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_kept_memory_is_not_faulted_in_again():
    ok, kept = _faults("keep")
    if ok != "True":
        pytest.skip("the C library is not glibc")
    _, plain = _faults("plain")
    # plain glibc maps and unmaps every block each step: 4 steps x 480 MB / 4 KB ~ 490 k page faults
    assert plain > 200_000
    assert kept < plain / 10


def test_the_trainer_keeps_memory_unless_told_not_to(tmp_path, monkeypatch):
    from sosd.train import loop
    from tests.conftest import tiny_config

    calls = []
    monkeypatch.setattr(loop, "keep_freed_memory", lambda: calls.append(1))
    loop.Trainer(tiny_config(tmp_path), tmp_path / "a", progress=False)
    loop.Trainer(tiny_config(tmp_path, **{"train.keep_memory": False}), tmp_path / "b", progress=False)
    assert calls == [1]
