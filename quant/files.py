"""One way to read the toolkit's files: know what a file is before parsing it, and say so plainly.

The toolkit writes three kinds of file, each tagged with a format string:

===========================  ==========================  ====================================
kind                         container                   written by
===========================  ==========================  ====================================
float model                  safetensors (+ JSON config)  ``quant.train``
quantized network            ``.npz`` (+ JSON header)     ``quant.quantize``, ``quant.make_assets``
sample pack                  ``.npz`` (+ JSON header)     ``quant.make_assets``
===========================  ==========================  ====================================

Every reader goes through :func:`sniff` first, so a file of another kind is refused with a
message naming what it is and what to do (a float model where a quantized network is expected:
"quantize it first"), a truncated or corrupt file with what is wrong with it, and nothing is
ever unpickled (``allow_pickle=False``, safetensors).
"""

import json
from pathlib import Path

import numpy as np

__all__ = ["FileError", "FORMATS", "sniff", "wrong_kind", "read_npz"]

#: Format tags and what they are called in messages.
FORMATS = {"src-float-model/1": "float model", "src-quantized-network/1": "quantized network",
           "src-sample-pack/1": "sample pack"}

_ZIP_MAGIC = b"PK\x03\x04"


class FileError(ValueError):
    """A file is missing, unreadable, corrupt or of another kind than expected."""


def sniff(path):
    """What ``path`` holds: ``(kind, format_tag)``.

    ``kind`` is ``"npz"``, ``"safetensors"`` or ``"unknown"``; ``format_tag`` is the toolkit's
    tag when one can be read (else None). Raises :class:`FileError` when the file is missing or
    unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise FileError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if head[:4] == _ZIP_MAGIC:
                return "npz", _npz_tag(path)
            if len(head) == 8:
                size = int.from_bytes(head, "little")
                if 2 <= size <= 100_000_000 and f.read(1) == b"{":
                    return "safetensors", _safetensors_tag(path)
    except OSError as error:
        raise FileError(f"{path}: cannot read ({error.strerror or error})") from None
    return "unknown", None


def _npz_tag(path):
    try:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data["header"])).get("format")
    except Exception:  # a truncated zip, no header: the caller reports the file as corrupt
        return None


def _safetensors_tag(path):
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="np") as f:
            return (f.metadata() or {}).get("format")
    except Exception:
        return None


def wrong_kind(path, found_tag, expected_tag):
    """The :class:`FileError` for a file of one known kind given where another is expected."""
    found, expected = FORMATS.get(found_tag, found_tag), FORMATS[expected_tag]
    hint = ""
    if found_tag == "src-float-model/1" and expected_tag == "src-quantized-network/1":
        hint = f"; quantize it first: python -m quant.quantize --model {path} --out model.npz"
    elif found_tag == "src-quantized-network/1" and expected_tag == "src-float-model/1":
        hint = "; it is already quantized: pass it where a quantized network (.npz) is expected"
    return FileError(f"{path}: this is a {found}, not a {expected}{hint}")


def check_kind(path, expected_tag, error=FileError):
    """Raise ``error`` unless ``path`` is a readable file of the kind ``expected_tag`` names."""
    try:
        container, tag = sniff(path)
    except FileError as problem:
        raise error(str(problem)) from None
    if tag == expected_tag:
        return container
    if tag in FORMATS:
        raise error(str(wrong_kind(path, tag, expected_tag)))
    if tag is not None:
        raise error(f"{path}: format {tag!r}, expected {expected_tag!r}")
    what = FORMATS[expected_tag]
    if container == "unknown":
        raise error(f"{path}: not a {what} (neither an .npz nor a safetensors file)")
    raise error(f"{path}: not a valid {what} (a {container} file that is truncated, corrupt or not the toolkit's)")


def read_npz(path, expected_format, error, what=None):
    """Return ``(header, arrays)`` of an ``.npz`` written with a JSON ``header`` array.

    Raises ``error`` (a :class:`FileError` subclass) naming ``path`` when the file is missing,
    of another kind, or corrupt. Loaded with ``allow_pickle=False``.
    """
    check_kind(path, expected_format, error)
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            arrays = {name: data[name] for name in data.files if name != "header"}
    except Exception as cause:  # zip, JSON and key errors of a corrupt file
        raise error(f"{path}: not a valid {what or FORMATS[expected_format]} ({type(cause).__name__}: {cause})") from None
    return header, arrays
