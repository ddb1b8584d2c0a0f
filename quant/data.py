"""Datasets: MNIST and Fashion-MNIST from IDX files, N-MNIST through tonic.

Every loader takes the directory that holds the files; nothing is downloaded.
Malformed files raise :class:`DatasetError` naming the file and the problem.
"""

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DatasetError", "ImageSet", "IDX_FILES", "NMNIST_SENSOR", "read_idx", "load_images",
    "split_train_val", "default_data_dir", "load_nmnist", "nmnist_frames",
]

#: File names of the four IDX files of MNIST and Fashion-MNIST, by split.
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

#: The N-MNIST sensor (width, height, polarities), as tonic names it.
NMNIST_SENSOR = (34, 34, 2)

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DatasetError(ValueError):
    """A dataset file is missing, truncated or not what its name says."""


@dataclass
class ImageSet:
    """Images in [0, 1] and their labels.

    Attributes
    ----------
    images : numpy.ndarray
        ``float32`` array of shape ``(n, height*width)``.
    labels : numpy.ndarray
        ``int64`` array of shape ``(n,)``.
    """

    images: np.ndarray
    labels: np.ndarray

    def __len__(self):
        return len(self.labels)

    def subset(self, index):
        return ImageSet(self.images[index], self.labels[index])


def _open(path):
    path = Path(path)
    for candidate in (path, path.with_name(path.name + ".gz")):
        if candidate.exists():
            if candidate.suffix == ".gz":
                return candidate, gzip.open(candidate, "rb")
            return candidate, open(candidate, "rb")
    raise DatasetError(f"{path}: not found (looked for {path.name} and {path.name}.gz)")


def read_idx(path):
    """Read one IDX file (optionally gzip-compressed) into a numpy array.

    Parameters
    ----------
    path : str or Path
        The file, with or without its ``.gz`` suffix.

    Raises
    ------
    DatasetError
        If the file is missing, its magic number is wrong, or its payload is
        not exactly as long as its header says.
    """
    found, stream = _open(path)
    try:
        with stream:
            data = stream.read()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DatasetError(f"{found}: cannot be read ({error})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DatasetError(f"{found}: not an IDX file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DatasetError(f"{found}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise DatasetError(
            f"{found}: payload is {len(data) - header} bytes, header shape {shape} needs {expected}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def load_images(directory, split="train"):
    """Load MNIST or Fashion-MNIST (same file layout) from ``directory``.

    Parameters
    ----------
    directory : str or Path
        Folder holding the four IDX files (``.gz`` or not).
    split : str
        ``train`` or ``test``.
    """
    if split not in IDX_FILES:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(IDX_FILES)}")
    if directory is None:   # what default_data_dir gives when there is no local copy
        raise DatasetError("no local copy of the data set (../shared/data/<name>, or set SRC_DATA_DIR)")
    images_name, labels_name = IDX_FILES[split]
    images = read_idx(Path(directory) / images_name)
    labels = read_idx(Path(directory) / labels_name)
    if images.ndim != 3 or labels.ndim != 1:
        raise DatasetError(f"{directory}: expected 3-d images and 1-d labels, got {images.shape} and {labels.shape}")
    if len(images) != len(labels):
        raise DatasetError(f"{directory}: {len(images)} images but {len(labels)} labels in the {split} split")
    if labels.size and labels.max() > 9:
        raise DatasetError(f"{directory}: label {int(labels.max())} out of range 0..9")
    flat = images.reshape(len(images), -1).astype(np.float32) / 255.0
    return ImageSet(flat, labels.astype(np.int64))


def split_train_val(dataset, val_fraction=0.1, seed=0):
    """Split a training set into training and validation parts (paper: 90/10), reproducibly."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(len(dataset))
    n_val = int(round(len(dataset) * val_fraction))
    return dataset.subset(np.sort(order[n_val:])), dataset.subset(np.sort(order[:n_val]))


def default_data_dir(name):
    """The shared copy of a dataset (``../shared/data/<name>`` beside the checkout), or ``None``.

    The environment variable ``SRC_DATA_DIR`` overrides the parent folder.
    """
    roots = [os.environ.get("SRC_DATA_DIR"), Path(__file__).resolve().parents[2] / "shared" / "data"]
    for root in roots:
        if root and (Path(root) / name / (IDX_FILES["test"][0] + ".gz")).exists():
            return Path(root) / name
        if root and (Path(root) / name / IDX_FILES["test"][0]).exists():
            return Path(root) / name
    return None


def nmnist_frames(events, n_steps=200, clip=1):
    """Bin N-MNIST events into ``(n_steps, 2, 34, 34)`` frames, values clipped to ``[0, clip]``.

    Uses :class:`tonic.transforms.ToFrame` with ``n_time_bins=n_steps``, as the
    paper did, and so tonic's binning: the bin width is
    ``(t_last - t_first) // n_steps`` microseconds, an event goes to bin
    ``(t - t_first) // width``, and events past ``n_steps`` whole bins (the
    last event among them) are dropped. Counts above ``clip`` are clipped
    (default 1: binary input spikes, the format the hardware takes).
    """
    import tonic.transforms

    if len(events) == 0:
        return np.zeros((n_steps, 2, 34, 34), dtype=np.float32)
    frames = tonic.transforms.ToFrame(sensor_size=NMNIST_SENSOR, n_time_bins=n_steps)(events)
    return np.minimum(frames, clip).astype(np.float32)


def load_nmnist(directory, train=True, n_steps=200, clip=1):
    """N-MNIST from a local copy, as a tonic dataset yielding ``((T, 2, 34, 34) frames, label)``.

    ``directory`` is the folder that holds ``NMNIST/Train/<digit>/*.bin`` and
    ``NMNIST/Test/<digit>/*.bin`` (the layout tonic extracts to). Nothing is
    downloaded: a missing folder raises :class:`DatasetError`.
    """
    import tonic.datasets

    class NMNIST(tonic.datasets.NMNIST):  # same class name: tonic derives the folder from it
        def _check_exists(self):
            folder = Path(self.location_on_system, self.folder_name)
            if not any(folder.glob("*/*.bin")):
                raise DatasetError(
                    f"{folder}: no N-MNIST .bin files (expected {folder}/<digit>/*.bin); "
                    "N-MNIST cannot be downloaded here, extract it there by hand")
            return True

    return NMNIST(str(directory), train=train,
                       transform=lambda events: nmnist_frames(events, n_steps, clip))
