"""How to get the per-task gradients of theta^com for the jd gradient methods: backward-pass variants
against joint's single backward, side by side in one process (round-robin, medians).

Rows: ``joint`` (forward + one backward of L_sem + L_dep), ``two_grads`` (what the jd strategy does:
forward + one ``torch.autograd.grad`` per task through the whole network), ``vmap`` (forward + one
batched ``autograd.grad(..., is_grads_batched=True)``), ``autogram`` (forward + torchjd's Gramian engine
over theta^com with ``batch_dim=None`` - BatchNorm in the trunk rules out its efficient batched mode -
then the weighted backward the engine is designed for).

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/jd_backward.py [--size 64 128 --batch 8 --rounds 8]
Writes results/jd_backward_<H>x<W>_b<batch>.json.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, nargs=2, default=(64, 128))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--variant", default="sosd")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import torch
    from torch.utils.data import DataLoader
    from torchjd.autogram import Engine

    from sosd.config import load_config
    from sosd.data import build_dataset
    from sosd.losses import depth_l1, semantic_ce
    from sosd.models import build_model
    from sosd.train.strategies.gradients import shared_parameters, specific_parameters

    torch.set_num_threads(args.threads)
    h, w = args.size
    cfg = load_config(None, [f"model.variant={args.variant}", "model.backbone=xception_small",
                             "data.dataset=synthetic", "data.preset=street", f"data.height={h}", f"data.width={w}",
                             f"data.train_size={args.batch}"])
    ds = build_dataset(cfg.data, "train", train=True, seed=0)
    cfg.model.num_classes = ds.num_classes
    torch.manual_seed(0)
    model = build_model(cfg.model).train()
    batch = next(iter(DataLoader(ds, batch_size=args.batch)))
    shared, specific = shared_parameters(model), specific_parameters(model)
    # the engine hooks its modules for good: it gets its own copy of the model
    model_ag = copy.deepcopy(model).train()
    engine = Engine(*model_ag.module_groups()["com"], batch_dim=None)

    def losses(m):
        out = m(batch["image"])
        return semantic_ce(out["semantic"], batch["labels"]), depth_l1(out["depth"], batch["target"], batch["valid"])

    def joint():
        a, b = losses(model)
        (a + b).backward()

    def two_grads():
        a, b = losses(model)
        torch.autograd.grad(a, shared + specific, retain_graph=True, allow_unused=True)
        torch.autograd.grad(b, shared + specific, allow_unused=True)

    def vmap():
        a, b = losses(model)
        torch.autograd.grad(torch.stack([a, b]), shared + specific, grad_outputs=torch.eye(2),
                            is_grads_batched=True, allow_unused=True)

    def autogram():
        a, b = losses(model_ag)
        v = torch.stack([a, b])
        engine.compute_gramian(v)
        v.backward(torch.tensor([0.5, 0.5]))

    fns = {"joint": joint, "two_grads": two_grads, "vmap": vmap, "autogram": autogram}
    times = {k: [] for k in fns}
    for r in range(args.rounds + 1):
        for k, f in fns.items():
            model.zero_grad(set_to_none=True)
            model_ag.zero_grad(set_to_none=True)
            t = time.perf_counter()
            f()
            if r:  # round 0 warms up
                times[k].append(time.perf_counter() - t)
    j = statistics.median(times["joint"])
    rows = [{"method": k, "median_s": statistics.median(v), "vs_joint": statistics.median(v) / j, "times_s": v}
            for k, v in times.items()]
    for r in rows:
        print(f"{r['method']:10s} {r['median_s']:.3f} s  x{r['vs_joint']:.2f} joint")
    out = Path(f"results/jd_backward_{h}x{w}_b{args.batch}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "torch": torch.__version__, "rows": rows}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
