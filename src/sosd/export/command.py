"""Export a checkpoint to ONNX (dynamic batch / height / width) or TorchScript (traced) for deployment.

  sosd export --checkpoint runs/esosd_indoor --format onnx --out esosd.onnx
  sosd export --checkpoint runs/esosd_indoor --format torchscript --out esosd.pt --fuse-bn
  sosd predict --checkpoint esosd.onnx --backend onnxruntime photo.jpg --out preds/

The model is traced at --height x --width (default: its training resolution); the exported graph accepts
other batch sizes and image sizes. ONNX inputs: ``image`` (B, 3, H, W) float32 in [0, 1] and, for
focal-aware models, ``intrinsics`` (B, 4) fx, fy, cx, cy in px; outputs ``depth`` (B, 1, H, W) and/or
``semantic`` (B, K, H, W) logits. The sosd config, class names and target kind are stored in the file
(ONNX metadata_props; TorchScript extra file sosd_meta.json), so the file alone is enough to predict.

After writing, the export is checked against the PyTorch model on random images at the export size and
at another size with batch 2 (--no-verify skips it); exit status 1 if it is off by more than the
tolerances of sosd.export.TOLERANCES (max error 1e-4 of the largest depth and of the largest |logit|
(at least 1), argmax agreement >= 99.9 %).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from sosd.errors import SOSDError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, metavar="CKPT",
                   help="run folder (its latest checkpoint), checkpoint folder or model.safetensors")
    p.add_argument("--format", default="onnx", choices=("onnx", "torchscript"), help="export format (default onnx)")
    p.add_argument("--out", required=True, metavar="FILE", help="output file (.onnx / .pt)")
    p.add_argument("--height", type=int, default=None, help="trace height (default: the training height)")
    p.add_argument("--width", type=int, default=None, help="trace width (default: the training width)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17)")
    p.add_argument("--fuse-bn", action="store_true",
                   help="fold BatchNorm into the convolutions before export (the ONNX exporter does it anyway)")
    p.add_argument("--no-verify", action="store_true", help="skip the comparison with the PyTorch model")


def verify(model, fmt: str, path: Path, height: int, width: int) -> list[tuple[str, dict]]:
    """Exported vs PyTorch eval outputs on random inputs at the export size (batch 1) and at another size
    (batch 2). Returns [(label, comparison)] (see :func:`sosd.export.compare_outputs`)."""
    import torch

    from sosd.export import compare_outputs
    from sosd.export.onnx_export import example_inputs

    other = (height + 16, max(32, width - 24))  # another size, not a multiple of the output stride
    if fmt == "onnx":
        from sosd.export.onnx_runtime import OnnxModel, make_session

        exported = OnnxModel(make_session(path), model.cfg)
        run = lambda *a: exported(*a)  # noqa: E731
    else:
        from sosd.export.torchscript import load_torchscript

        module, meta = load_torchscript(path)
        names = json.loads(meta["outputs"])
        run = lambda *a: dict(zip(names, module(*a)))  # noqa: E731
    results = []
    for b, (h, w) in ((1, (height, width)), (2, other)):
        args = example_inputs(model, h, w, batch=b)
        with torch.no_grad():
            ref = model(*args)
            got = run(*args)
        results.append((f"batch {b} at {h}x{w}", compare_outputs(ref, got)))
    return results


def run(args) -> int:
    from sosd.export import format_comparison
    from sosd.export.onnx_export import DEFAULT_OPSET, export_metadata, export_onnx
    from sosd.checkpoint import load_model, resolve

    model, cfg, meta = load_model(args.checkpoint, "cpu", with_meta=True)
    h = args.height or cfg.data.height
    w = args.width or cfg.data.width
    if args.opset is not None and args.format != "onnx":
        raise SOSDError("--opset applies to --format onnx only")
    out = Path(args.out)
    if out.is_dir():
        suffix = "onnx" if args.format == "onnx" else "pt"
        raise SOSDError(f"--out {out} is a folder; give a file name (e.g. {out / ('model.' + suffix)})")
    from sosd.errors import check_writable

    check_writable(out, "--out")  # before the export, not as a traceback after it
    src = resolve(args.checkpoint)
    exported_model = model
    if args.fuse_bn:
        from sosd.export.fuse import fuse_bn

        exported_model = fuse_bn(model)
    md = export_metadata(cfg, meta, h, w, model, checkpoint=str(src), bn_folded=str(bool(args.fuse_bn)))
    try:
        if args.format == "onnx":
            opset = args.opset or DEFAULT_OPSET
            export_onnx(exported_model, out, h, w, opset=opset, metadata=md)
        else:
            from sosd.export.torchscript import export_torchscript

            export_torchscript(exported_model, out, h, w, metadata=md)
    except ValueError as e:
        raise SOSDError(str(e)) from None
    size_mb = out.stat().st_size / 2**20
    print(f"wrote {out} ({args.format}, {cfg.model.variant}, traced at {h}x{w}, dynamic batch/height/width, "
          f"{size_mb:.1f} MiB) from {src}")
    if args.no_verify:
        return 0
    results = verify(model, args.format, out, h, w)
    for label, res in results:
        print(f"  check {label}: {format_comparison(res)} -> {'ok' if res['ok'] else 'MISMATCH'}")
    if not all(r["ok"] for _, r in results):
        print("sosd export: the exported model does not match the PyTorch model within the tolerances",
              flush=True)
        return 1
    return 0
