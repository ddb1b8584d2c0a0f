import gzip
import hashlib

import numpy as np
import pytest

from quant.data import (DatasetError, default_data_dir, load_images, load_nmnist, nmnist_frames, read_idx,
                        split_train_val)
from tests.helpers import idx_bytes, nmnist_event_bytes, write_idx_dataset


@pytest.mark.parametrize("compress", [True, False])
def test_round_trip_of_generated_idx_files(tmp_path, compress):
    write_idx_dataset(tmp_path, n_train=20, n_test=10, compress=compress)
    train = load_images(tmp_path, "train")
    assert train.images.shape == (20, 784) and train.labels.shape == (20,)
    assert train.images.dtype == np.float32 and 0.0 <= train.images.min() and train.images.max() == 1.0
    assert len(load_images(tmp_path, "test")) == 10


def test_bad_magic_is_rejected(tmp_path):
    (tmp_path / "x-idx3-ubyte").write_bytes(b"\x12\x34\x08\x03" + bytes(12))
    with pytest.raises(DatasetError, match="bad magic"):
        read_idx(tmp_path / "x-idx3-ubyte")


def test_truncated_payload_is_rejected(tmp_path):
    data = idx_bytes(np.zeros((3, 28, 28)))[:-5]
    (tmp_path / "x.gz").write_bytes(gzip.compress(data))
    with pytest.raises(DatasetError, match="payload is"):
        read_idx(tmp_path / "x")


def test_corrupt_gzip_is_rejected(tmp_path):
    (tmp_path / "x.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DatasetError, match="cannot be read"):
        read_idx(tmp_path / "x")


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte"):
        load_images(tmp_path, "train")


def test_image_and_label_counts_must_agree(tmp_path):
    write_idx_dataset(tmp_path, n_train=5, n_test=4)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(3))))
    with pytest.raises(DatasetError, match="4 images but 3 labels"):
        load_images(tmp_path, "test")


def test_split_is_disjoint_complete_and_reproducible(tmp_path):
    data = load_images(write_idx_dataset(tmp_path, n_train=50), "train")
    train, val = split_train_val(data, 0.1, seed=3)
    assert len(train) == 45 and len(val) == 5
    train2, val2 = split_train_val(data, 0.1, seed=3)
    assert np.array_equal(val.labels, val2.labels) and np.array_equal(train.images, train2.images)


SHARED_SHA = {  # from ../shared/data/README.md: sha256 of the uncompressed files, first 16 hex
    "mnist": {"train-images-idx3-ubyte": "ba891046e6505d7a", "t10k-labels-idx1-ubyte": "ff7bcfd416de3373"},
    "fashion-mnist": {"train-images-idx3-ubyte": "c59f468a2f672dc8", "t10k-labels-idx1-ubyte": "0402a96d92fd2663"},
}


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_shared_datasets_load(name):
    directory = default_data_dir(name)
    if directory is None:
        pytest.skip(f"no shared copy of {name}")
    for file, prefix in SHARED_SHA[name].items():
        assert hashlib.sha256(gzip.open(directory / (file + ".gz")).read()).hexdigest()[:16] == prefix
    train, test = load_images(directory, "train"), load_images(directory, "test")
    assert train.images.shape == (60000, 784) and test.images.shape == (10000, 784)
    assert np.bincount(test.labels).tolist() == np.bincount(test.labels, minlength=10).tolist()
    assert (np.bincount(train.labels) > 5000).all()


def _write_nmnist(root, split, digit, name, events):
    folder = root / "NMNIST" / split / str(digit)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(nmnist_event_bytes(*events))


def test_nmnist_loader_bins_events_written_in_the_nmnist_format(tmp_path):
    # Span 300000 us in 200 bins: tonic's bin width is 1500 us, and the last event (bin 200) is dropped.
    x, y, p = [5, 33, 33, 9, 10, 1], [7, 0, 0, 9, 10, 2], [1, 0, 0, 1, 0, 1]
    t = [0, 3000, 3001, 298_499, 298_500, 300_000]
    _write_nmnist(tmp_path, "Train", 3, "00001.bin", (x, y, p, t))
    _write_nmnist(tmp_path, "Train", 8, "00002.bin", ([0, 1], [0, 1], [0, 0], [10, 2010]))
    data = load_nmnist(tmp_path, train=True, n_steps=200)
    assert len(data) == 2
    frames, label = data[0]
    assert label == 3 and frames.shape == (200, 2, 34, 34) and frames.dtype == np.float32
    assert frames[0, 1, 7, 5] == 1
    assert frames[2, 0, 0, 33] == 1  # two events in one bin, clipped to 1
    assert frames[198, 1, 9, 9] == 1 and frames[199, 0, 10, 10] == 1
    assert frames.sum() == 4
    assert data[1][1] == 8


def test_nmnist_frames_can_keep_counts():
    events = np.zeros(4, dtype=[("x", int), ("y", int), ("t", int), ("p", int)])
    events["t"] = [0, 0, 5, 10]
    events["x"] = 4
    frames = nmnist_frames(events, n_steps=10, clip=5)
    assert frames[0, 0, 0, 4] == 2 and frames[5, 0, 0, 4] == 1 and frames.sum() == 3


def test_nmnist_loader_refuses_to_download(tmp_path):
    with pytest.raises(DatasetError, match="cannot be downloaded"):
        load_nmnist(tmp_path, train=False)


def test_no_local_copy_is_a_dataset_error():
    """Regression: ``load_images(default_data_dir(...))`` without a local copy raised a TypeError
    (a traceback from host.defaults and host.bench_link) instead of a clean DatasetError."""
    with pytest.raises(DatasetError, match="no local copy"):
        load_images(None, "test")
