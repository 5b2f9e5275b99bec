"""The one error type users see: a message naming the file or key and the problem."""


class SOSDError(Exception):
    """Bad input (file, dataset, checkpoint, config): the CLI prints the message, not a traceback."""


class DataError(SOSDError):
    """A dataset file that is missing, unreadable or malformed; the message names the path."""


class MissingDependencyError(SOSDError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def require_module(name: str, extra: str, purpose: str):
    """``import name``, or a MissingDependencyError telling which extra to install (``pip install
    'sosd[extra]'``) for ``purpose``."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        raise MissingDependencyError(f"{purpose} needs the Python package {name}, which is not installed: "
                                     f"pip install 'sosd[{extra}]'") from None


def check_writable(path, what: str, folder: bool = False) -> None:
    """Raise a SOSDError naming ``path`` unless it can be written: ``folder``: the folder itself (created if
    missing), else a file in its parent folder (created if missing). Called before the work, so a read-only
    or mistyped output path never costs a finished evaluation or export."""
    import os
    import uuid
    from pathlib import Path

    p = Path(path)
    d = p if folder else p.parent
    try:
        if not folder and p.is_dir():
            raise SOSDError(f"{what} {p} is a folder; give a file name")
        d.mkdir(parents=True, exist_ok=True)
        probe = d / f".sosd-write-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise SOSDError(f"cannot write {what} {p}: {e.strerror or e} ({d} is not a writable folder)") from None
