"""Crash safety of training: nothing is lost and nothing half-written is used.

(a) SIGKILL at seeded random points (one of them while a checkpoint is being written), resume until done:
    every checkpoint on disk stays readable, a half-written folder is never taken as a checkpoint, and the
    final weights equal an uninterrupted run's bit for bit;
(b) SIGINT / SIGTERM save a checkpoint at the step reached and exit with 130 and the resume command;
    resuming finishes with the uninterrupted weights;
(c) a full disk while writing a checkpoint leaves the previous one and the `latest` pointer untouched,
    removes the temporary folder and says the disk is full, naming the folder;
(d) a train_state.pt holding a pickled object is refused without running it.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/test_crash_safety.py   (about 60 s: training
runs in subprocesses, each paying the torch import)
"""
from __future__ import annotations

import errno
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sosd import checkpoint as ckpt
from sosd.cli import main
from sosd.config import dump_config
from sosd.errors import SOSDError
from tests.conftest import tiny_config

STEPS = 12
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tiny config (checkpoint every step) as YAML, and the final weights of an uninterrupted run."""
    from sosd.train.loop import fit

    tmp = tmp_path_factory.mktemp("crash")
    cfg = tiny_config(tmp, steps=STEPS, **{"train.ckpt_every": 1, "train.name": "reference"})
    yaml_path = tmp / "tiny.yaml"
    dump_config(cfg, yaml_path)
    fit(cfg, progress=False)
    sd, _, meta = ckpt.read_weights(tmp / "runs" / "reference")
    assert int(meta["step"]) == STEPS
    return yaml_path, tmp / "runs", sd


def _train_cmd(yaml_path: Path, name: str, resume: Path | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "sosd", "train", "--config", str(yaml_path), f"train.name={name}", "--no-progress"]
    return cmd + (["--resume", str(resume)] if resume else [])


def _start(cmd) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _latest_step(run: Path) -> int:
    try:
        return int(ckpt.resolve(run).name[5:])
    except (SOSDError, ValueError):
        return 0


def _wait(proc: subprocess.Popen, until, timeout: float = 120.0, poll: float = 0.002) -> bool:
    """Poll ``until()`` every ``poll`` s while ``proc`` runs; True once it holds, False if proc ended first."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if until():
            return True
        if proc.poll() is not None:
            return bool(until())
        time.sleep(poll)
    proc.kill()
    raise AssertionError(f"timed out after {timeout} s waiting for the training process")


def _check_checkpoints(run: Path) -> dict:
    """Every checkpoint folder on disk reads back (weights, training state, meta at its own step); the
    one `latest` names is a finished one. Returns what is there, for the assertions of the caller."""
    d = run / "checkpoints"
    finished = [p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")]
    for p in finished:
        sd, _, meta = ckpt.read_weights(p)
        state, m = ckpt.read_train_state(p)
        assert m["step"] == int(meta["step"]) == int(p.name[5:]), p
        assert sd and "optimizer" in state
    latest = ckpt.resolve(run)
    assert latest.parent == d and not latest.name.startswith(".") and latest in finished
    half = sorted(p.name for p in d.iterdir() if p.name.startswith("."))
    return {"latest": latest.name, "finished": sorted(p.name for p in finished), "half_written": half}


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs from the uninterrupted run"


# ---------------------------------------------------------------------------------------------- (a)

def test_sigkill_at_random_points_then_resume_gives_the_uninterrupted_weights(reference, capsys):
    yaml_path, runs, ref = reference
    run = runs / "killed"
    rng = random.Random(20240611)
    seen_half_written = []
    for k in range(3):
        start = _latest_step(run)
        proc = _start(_train_cmd(yaml_path, "killed", resume=run if start else None))
        if k == 1:  # kill while a checkpoint is being written: the moment its .tmp folder appears
            tmp_glob = f".step_*.tmp-{proc.pid}"
            _wait(proc, lambda: any((run / "checkpoints").glob(tmp_glob)), poll=0.0005)
        else:  # a seeded random point a little after the run's first new checkpoint
            _wait(proc, lambda: _latest_step(run) > start)
            time.sleep(rng.uniform(0.0, 0.5))
        proc.kill()
        proc.communicate()
        state = _check_checkpoints(run)
        seen_half_written += state["half_written"]
        assert int(state["latest"][5:]) >= start
    # resume until finished (here, in this process) and compare with the uninterrupted run
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    sd, _, meta = ckpt.read_weights(run)
    assert int(meta["step"]) == STEPS
    _assert_same_weights(sd, ref)
    # the leftovers of the killed writers were cleaned up by the next save
    assert not [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    print(f"half-written folders left by the kills (never used, then removed): {seen_half_written}")


# ---------------------------------------------------------------------------------------------- (b)

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigint_and_sigterm_save_a_checkpoint_and_exit_130(reference, capsys, sig):
    yaml_path, runs, ref = reference
    name = f"signal-{sig.name}"
    run = runs / name
    proc = _start(_train_cmd(yaml_path, name))
    assert _wait(proc, lambda: _latest_step(run) >= 1), proc.communicate()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    m = re.search(r"sosd train: interrupted: stopped at step (\d+); checkpoint saved\. Continue with: "
                  r"sosd train --resume (\S+)", err)
    assert m, err
    step = int(m.group(1))
    assert 1 <= step < STEPS and Path(m.group(2)) == run
    assert "Traceback" not in err
    state = _check_checkpoints(run)
    assert state["latest"] == f"step_{step:07d}" and not state["half_written"]
    # the command it printed finishes the run with the uninterrupted weights
    assert main(["train", "--resume", m.group(2), "--no-progress"]) == 0
    capsys.readouterr()
    _assert_same_weights(ckpt.read_weights(run)[0], ref)


# ---------------------------------------------------------------------------------------------- (c)

def _failure(kind: str) -> BaseException:
    """What a full disk looks like from each writer (seen on a 300 KB tmpfs): open/write: OSError ENOSPC;
    safetensors: SafetensorError "...(os error 28)"; torch.save: a bare RuntimeError from its zip writer."""
    if kind == "OSError":
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    if kind == "SafetensorError":
        from safetensors import SafetensorError

        return SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    return RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")


@pytest.mark.parametrize("kind", ["OSError", "SafetensorError", "torch.save RuntimeError"])
def test_disk_full_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, capsys, monkeypatch, kind):
    import shutil
    from collections import namedtuple

    import safetensors.torch

    cfg = tiny_config(tmp_path, steps=3, **{"train.ckpt_every": 1})
    yaml_path = tmp_path / "tiny.yaml"
    dump_config(cfg, yaml_path)
    run = tmp_path / "runs" / "tiny"
    ckpt_dir = run / "checkpoints"
    before = {}

    def snapshot():  # the finished checkpoints and the pointer (not the temporary folder being written)
        return {p.relative_to(ckpt_dir): p.read_bytes() for p in ckpt_dir.rglob("*")
                if p.is_file() and not p.relative_to(ckpt_dir).parts[0].startswith(".")}

    def failing(real):
        calls = []

        def write(*a, **kw):
            calls.append(1)
            if len(calls) == 2:  # the second checkpoint: the disk is full now
                before.update(snapshot())
                raise _failure(kind)
            return real(*a, **kw)
        return write

    if kind == "torch.save RuntimeError":
        monkeypatch.setattr(torch, "save", failing(torch.save))
        usage = namedtuple("usage", "total used free")
        monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(1 << 30, 1 << 30, 0))
    else:
        monkeypatch.setattr(safetensors.torch, "save_file", failing(safetensors.torch.save_file))
    rc = main(["train", "--config", str(yaml_path), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert f"the disk is full: no space left while writing checkpoint {ckpt_dir / 'step_0000002'}" in err
    assert f"the previous checkpoints in {ckpt_dir} and its 'latest' pointer are untouched" in err
    assert snapshot() == before and before  # step_0000001 and latest, byte for byte
    assert (ckpt_dir / "latest").read_text().strip() == "step_0000001"
    assert not [p.name for p in ckpt_dir.iterdir() if p.name.startswith(".")]  # the temporary folder is gone
    ckpt.read_weights(run)
    assert ckpt.read_train_state(run)[1]["step"] == 1
    if kind == "OSError":  # space freed: the run resumes from the kept checkpoint and finishes
        monkeypatch.undo()
        assert main(["train", "--resume", str(run), "--no-progress"]) == 0
        capsys.readouterr()
        assert ckpt.read_train_state(run)[1]["step"] == 3


def test_clean_leftovers_restores_a_checkpoint_moved_aside(tmp_path):
    """A writer killed between the two renames of a replace (`best`) leaves `.best.old-<pid>` and no `best`:
    the next save puts it back; dead writers' temporary folders, pointer files and checkpoints being pruned
    (renamed `.<name>.del-<pid>` before deletion, so never half-deleted under their name) are removed."""
    d = tmp_path / "checkpoints"
    (d / ".best.old-999999").mkdir(parents=True)
    (d / ".best.old-999999" / ckpt.MODEL_FILE).write_bytes(b"x")
    (d / ".step_0000003.tmp-999999").mkdir()
    (d / ".latest.tmp-999999").write_text("step_0000003\n")
    (d / ".step_0000001.del-999999").mkdir()  # killed while pruning
    (d / f".step_0000004.tmp-{os.getpid()}").mkdir()  # a live writer's (ours): kept
    removed = ckpt.clean_leftovers(d)
    assert sorted(p.name for p in removed) == [".latest.tmp-999999", ".step_0000001.del-999999",
                                               ".step_0000003.tmp-999999"]
    assert (d / "best" / ckpt.MODEL_FILE).is_file()
    assert sorted(p.name for p in d.iterdir()) == [f".step_0000004.tmp-{os.getpid()}", "best"]


# ---------------------------------------------------------------------------------------------- (d)

class _WritesAFile:
    """Unpickling this calls open(path, "w"): a stand-in for any code a malicious pickle would run."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickled_object_in_train_state_is_refused_and_not_run(tmp_path, capsys):
    from sosd.train.loop import Trainer

    cfg = tiny_config(tmp_path, steps=1)
    run = tmp_path / "runs" / "tiny"
    run.mkdir(parents=True)
    dump_config(cfg, run / "config.yaml")
    folder = Trainer(cfg, run, progress=False).save("step_0000001")
    marker = tmp_path / "written_by_the_pickle"
    state = torch.load(folder / ckpt.STATE_FILE, weights_only=True)
    state["optimizer"] = _WritesAFile(marker)
    torch.save(state, folder / ckpt.STATE_FILE)
    # the payload is live: a plain (unsafe) load would run it
    torch.load(folder / ckpt.STATE_FILE, weights_only=False)["optimizer"].close()
    assert marker.exists()
    marker.unlink()
    with pytest.raises(SOSDError, match=r"refusing to load .*train_state\.pt: it holds pickled Python objects "
                                        r"\(GLOBAL io\.open\), which a sosd checkpoint never does"):
        ckpt.read_train_state(run)
    assert not marker.exists()
    # the same through the CLI
    assert main(["train", "--resume", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"refusing to load {folder / ckpt.STATE_FILE}" in err and "nothing in it was run" in err
    assert not marker.exists()


def test_every_torch_load_in_the_package_is_weights_only():
    """No code path unpickles arbitrary objects: each torch.load call in src/ passes weights_only=True."""
    calls = []
    for f in (ROOT / "src" / "sosd").rglob("*.py"):
        text = f.read_text()
        for m in re.finditer(r"torch\.load\(", text):
            call = text[m.start():text.find(")", m.start()) + 1]
            calls.append((f.name, call))
            assert "weights_only=True" in call, f"{f}: {call}"
        assert "pickle.load(" not in text and "allow_pickle=True" not in text, f
    assert calls
