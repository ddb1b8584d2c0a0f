"""Where a report came from: the git commit of the working tree, and the command that made it."""

import hashlib
import subprocess
import sys
from pathlib import Path

__all__ = ["file_record", "git_commit", "provenance"]

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


def file_record(path, key="model"):
    """``{KEY_file, KEY_sha256}`` naming an input file of a report so that a reader can tell which
    one it was: the path relative to the checkout when it lies inside it (a report built in one
    clone names the same file in another), the absolute path otherwise; and the hash of its bytes."""
    path = Path(path).resolve()
    try:
        name = str(path.relative_to(ROOT))
    except ValueError:
        name = str(path)
    return {f"{key}_file": name, f"{key}_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
