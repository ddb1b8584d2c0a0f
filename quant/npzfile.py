"""Reading the toolkit's ``.npz`` files safely: no pickles, a JSON header with a format tag, clear errors."""

import json
from pathlib import Path

import numpy as np

__all__ = ["read_npz"]


def read_npz(path, expected_format, error, what):
    """Return ``(header, arrays)`` of an ``.npz`` written with a JSON ``header`` array.

    Raises ``error`` (an exception class) naming ``path`` when the file is missing, is not a
    readable archive, or carries another format tag. Loaded with ``allow_pickle=False``.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            arrays = {name: data[name] for name in data.files if name != "header"}
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except Exception as cause:  # zip, JSON and key errors of a corrupt file
        raise error(f"{path}: not a valid {what} ({type(cause).__name__}: {cause})") from None
    if header.get("format") != expected_format:
        raise error(f"{path}: format {header.get('format')!r}, expected {expected_format!r}")
    return header, arrays
