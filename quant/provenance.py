"""Where a report came from: the git commit of the working tree, and the command that made it."""

import subprocess
import sys
from pathlib import Path

__all__ = ["git_commit", "provenance"]

ROOT = Path(__file__).resolve().parents[1]


def git_commit():
    """``HEAD``'s hash, with ``+dirty`` when tracked files differ from it; None outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=ROOT).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True, cwd=ROOT).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def provenance(module, argv=None):
    """``{"command": "python -m MODULE ARGS", "git_commit": ...}`` for a report."""
    args = argv if argv is not None else sys.argv[1:]
    return {"command": " ".join(["python", "-m", module, *map(str, args)]), "git_commit": git_commit()}
