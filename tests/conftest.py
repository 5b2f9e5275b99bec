"""Shared fixtures: tiny configs on the synthetic scenes, CPU only, fixed seeds.

Slow tests (full Xception-65, multi-process) are marked ``slow`` and run with ``--runslow`` or
``SOSD_RUN_SLOW=1``.
"""
import os

import pytest
import torch

# 2 threads on the 2-core CI machine; OMP_NUM_THREADS (e.g. 1 on a shared machine) wins when set
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 0)) or min(2, os.cpu_count() or 1))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("SOSD_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow test: run with --runslow or SOSD_RUN_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def one_thread():
    """torch on one thread for the test (as the tiny runs, train.threads=1): two threads on shared, busy
    cores are far slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_config(tmp_path, variant="sosd", strategy="joint", steps=4, **over):
    """A seconds-long run: small backbone, 8 channels, 48x64 synthetic indoor scenes."""
    from sosd.config import load_config

    ov = {
        "model.variant": variant, "model.backbone": "xception_small", "model.aspp_channels": 16,
        "model.decoder_channels": 16, "model.refined_channels": 8,
        "data.dataset": "synthetic", "data.preset": "indoor", "data.height": 48, "data.width": 64,
        "data.train_size": 16, "data.val_size": 4,
        "train.name": "tiny", "train.out_dir": str(tmp_path / "runs"), "train.strategy": strategy,
        "train.steps": steps, "train.batch_size": 2, "train.lr": 1e-3, "train.log_every": 1,
        "train.threads": 1, "eval.num_pictures": 2,
    }
    ov.update(over)
    cfg = load_config(None, [f"{k}={v}" for k, v in ov.items()])
    from sosd.data import build_dataset

    cfg.model.num_classes = build_dataset(cfg.data, "train").num_classes
    return cfg


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One tiny indoor SOSD-Net run shared by the tests that only read it: (run folder, config)."""
    from sosd.train.loop import fit

    tmp = tmp_path_factory.mktemp("tiny_run")
    cfg = tiny_config(tmp)
    fit(cfg, progress=False)
    return tmp / "runs" / "tiny", cfg
