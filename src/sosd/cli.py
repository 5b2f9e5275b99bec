"""``sosd`` command line: argparse subcommands that call plain functions.

Each command lives in the package it belongs to and exposes ``add_arguments(parser)`` and ``run(args)``;
this table is the only place that names them (no registry).
"""
from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module, one-line help). Modules import torch lazily inside run() where they can.
COMMANDS = {
    "train": ("sosd.train.command", "train a variant (joint or EM, Algorithm 1) from a YAML config"),
    "eval": ("sosd.eval.command", "evaluate a checkpoint, or score saved prediction files offline"),
    "predict": ("sosd.eval.predict", "predict depth and segmentation for images; writes PNGs"),
    "model-info": ("sosd.models.info", "parameters and GFLOPs of each variant (Table 1 columns)"),
    "scenes": ("sosd.data.scenes_command", "write procedural scenes as PNGs and a contact sheet"),
    "ablate": ("sosd.ablation.command", "reproduce Tables 1-4: train every row over seeds, write tables"),
    "study": ("sosd.ablation.study_command", "what holds of the paper's claims: converged, paired, multi-seed "
              "verdicts"),
    "probe": ("sosd.eval.probe_command", "measure what the semantic-to-depth unit learned against the "
              "generator's ground truth (eq. 3)"),
    "data": ("sosd.data.command", "inspect a dataset: `data show` (contact sheet), `data check`"),
    "demo": ("sosd.demo", "a local web page: drop an image, see its depth map and segmentation"),
    "export": ("sosd.export.command", "export a checkpoint to ONNX (dynamic sizes) or TorchScript"),
}


def build_parser() -> argparse.ArgumentParser:
    from sosd.version import __version__

    parser = argparse.ArgumentParser(
        prog="sosd",
        description="SOSD-Net: joint depth and semantic segmentation from one RGB image.",
        epilog="Run `sosd <command> --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"sosd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, (module, help_) in COMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:  # a real import error inside the module: show it
                raise
            continue  # command not built yet in this checkout
        p = sub.add_parser(name, help=help_, description=(mod.__doc__ or help_).strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from sosd.config import ConfigError
    from sosd.errors import SOSDError

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # `sosd train a=1 --overwrite b=2`: argparse takes one run of positionals, so key=value overrides
        # after a flag come back unparsed; they are overrides all the same (in the order given)
        if hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = list(args.overrides or []) + extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        rc = args._run(args)
    except (SOSDError, ConfigError) as e:
        print(f"sosd {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(f"sosd {args.command}: interrupted{': ' + str(e) if str(e) else ''}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed: not an error of ours
        return 0
    return int(rc or 0)


if __name__ == "__main__":
    raise SystemExit(main())
