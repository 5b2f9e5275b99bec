"""Train a SOSD-Net variant from a YAML config.

  sosd train --config configs/synthetic/esosd_indoor_small.yaml [section.key=value ...]
  sosd train --resume runs/<name>            continue a run exactly where it stopped
  sosd train --config CFG --print-config     show the resolved config and exit

The YAML file mirrors the dataclasses of sosd.config (model / data / train / eval sections); overrides on
the command line win. The resolved config is written to <out_dir>/<name>/config.yaml. Ctrl-C (or SIGTERM)
saves a checkpoint and stops; `--resume` continues with bit-identical results.
"""
from __future__ import annotations

import argparse
import textwrap


def _fields_help() -> str:
    from sosd.config import describe_fields

    lines = ["config keys (section.key=value), with defaults:"]
    for key, default, help_ in describe_fields():
        lines.append(f"  {key} = {default}")
        lines += ["      " + s for s in textwrap.wrap(help_, 92)]
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = _fields_help()
    p.add_argument("--config", "-c", metavar="YAML", help="config file (see configs/); default: built-in defaults")
    p.add_argument("overrides", nargs="*", metavar="section.key=value", help="config overrides, e.g. train.steps=500")
    p.add_argument("--resume", metavar="RUN_OR_CKPT",
                   help="continue from a run folder (its latest checkpoint) or a checkpoint folder; the run's "
                        "config.yaml is used unless --config is given; overrides still apply")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing run folder of the same name (kept until the new run has started: "
                        "a refused config or data leaves it intact)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")


def run(args) -> int:
    from pathlib import Path

    import yaml

    from sosd.config import load_config, to_dict
    from sosd.errors import SOSDError

    config = args.config
    if args.resume and not config:
        from sosd.checkpoint import resolve

        ck = resolve(args.resume)
        run_dir = ck.parent.parent if ck.parent.name == "checkpoints" else Path(args.resume)
        config = run_dir / "config.yaml"
        if not config.is_file():
            raise SOSDError(f"cannot find the config of {args.resume} (looked for {config}); pass --config")
    cfg = load_config(config, args.overrides)
    if args.print_config:
        print(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        return 0
    from sosd.train.loop import fit

    fit(cfg, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress)
    return 0
