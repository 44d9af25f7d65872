import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from search.data import FILES, N_VAL, load_dataset, read_idx, split_indices
from search.errors import SearchError
from search.known import find_data_dir, identify

from conftest import MNIST, needs_mnist

pytestmark = needs_mnist


def test_idx_reader_matches_published_counts_and_first_labels():
    labels = read_idx(MNIST / "train-labels-idx1-ubyte.gz")
    assert labels.shape == (60000,)
    assert np.bincount(labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    test_labels = read_idx(MNIST / "t10k-labels-idx1-ubyte.gz")
    assert test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    images = read_idx(MNIST / "t10k-images-idx3-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8


def test_reader_accepts_uncompressed_files(tmp_path):
    raw = gzip.decompress((MNIST / "t10k-labels-idx1-ubyte.gz").read_bytes())
    assert hashlib.md5(raw).hexdigest() == "27ae3e4e09519cfbb04c329615203637"
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(raw)
    assert read_idx(tmp_path / "t10k-labels-idx1-ubyte").tolist() == read_idx(
        MNIST / "t10k-labels-idx1-ubyte.gz").tolist()


@pytest.mark.parametrize("damage", ["truncate", "magic", "gzip"])
def test_corrupt_idx_is_one_clear_error(tmp_path, damage):
    raw = gzip.decompress((MNIST / "t10k-labels-idx1-ubyte.gz").read_bytes())
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    if damage == "truncate":
        path.write_bytes(gzip.compress(raw[:-100]))
    elif damage == "magic":
        path.write_bytes(gzip.compress(b"\x12\x34" + raw[2:]))
    else:
        path.write_bytes((MNIST / "t10k-labels-idx1-ubyte.gz").read_bytes()[:500])
    with pytest.raises(SearchError, match=str(path)):
        read_idx(path)


def test_split_is_fixed_disjoint_and_complete():
    train, val = split_indices(60000)
    assert len(train) == 60000 - N_VAL and len(val) == N_VAL
    assert len(np.union1d(train, val)) == 60000
    again_train, again_val = split_indices(60000)
    assert (train == again_train).all() and (val == again_val).all()


def test_dataset_is_resident_normalised_and_cached():
    d = load_dataset("mnist", MNIST, "cpu")
    assert d.train.pixels.shape == (55000, 1, 28, 28) and d.val.pixels.shape == (5000, 1, 28, 28)
    assert d.test.pixels.shape == (10000, 1, 28, 28) and d.test.y.dtype == torch.int64
    assert d.train.pixels.dtype == torch.float32  # MNIST fits many times over: normalised once (FLOATS_UP_TO)
    x = d.train.images()
    assert x.dtype == torch.float32 and abs(x.mean().item()) < 0.05 and abs(x.std().item() - 1) < 0.05
    assert load_dataset("mnist", MNIST, "cpu") is d
    # every class is present in the validation split in roughly its share
    assert torch.bincount(d.val.y, minlength=10).min().item() > 400


def test_missing_directory_and_missing_files(tmp_path):
    with pytest.raises(SearchError, match="does not exist"):
        find_data_dir("mnist", tmp_path / "nope")
    (tmp_path / (FILES["train_images"] + ".gz")).write_bytes(b"")
    with pytest.raises(SearchError, match="lacks"):
        find_data_dir("mnist", tmp_path)


def test_datasets_are_identified_by_checksum():
    assert identify(MNIST) == "mnist"


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not FASHION.is_dir(), reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_is_found_beside_an_mnist_data_dir():
    assert identify(FASHION) == "fashion-mnist"
    # SEARCH_DATA_DIR points at MNIST: a fashion-mnist study still finds its own files
    assert find_data_dir("fashion-mnist", MNIST) == FASHION
    assert find_data_dir("mnist", MNIST) == MNIST
    d = load_dataset("fashion-mnist", MNIST, "cpu")
    assert len(d.train) == 55000 and torch.bincount(d.test.y).tolist() == [1000] * 10


def mirrored(dataset, url, tmp_path, monkeypatch, **more):
    """The dataset downloads from `url` into a fresh user cache, with no system folder."""
    from dataclasses import replace

    from search.known import KNOWN

    monkeypatch.setitem(KNOWN, dataset, replace(KNOWN[dataset], mirrors=(url,), system_dirs=(), **more))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A real HTTP server on 127.0.0.1 serving a copy of the MNIST files, as a download mirror."""
    import functools
    import http.server
    import threading

    served = tmp_path / "mirror"
    served.mkdir()
    for f in MNIST.iterdir():
        (served / f.name).write_bytes(f.read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    mirrored("mnist", f"http://127.0.0.1:{server.server_address[1]}/", tmp_path, monkeypatch)
    yield served
    server.shutdown()


def test_download_checks_every_file_and_lands_in_the_user_cache(mirror, tmp_path):
    d = find_data_dir("mnist")
    assert d == tmp_path / "cache" / "mnist-search" / "mnist"
    assert sorted(p.name for p in d.iterdir()) == sorted(f + ".gz" for f in FILES.values())
    assert read_idx(d / "train-labels-idx1-ubyte.gz")[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert find_data_dir("mnist") == d  # the second lookup finds the cache, no download


def test_download_rejects_a_file_with_the_wrong_checksum(mirror):
    raw = gzip.decompress((mirror / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (mirror / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(raw[:-1] + b"\x00"))
    with pytest.raises(SearchError, match="checksum mismatch for t10k-labels-idx1-ubyte"):
        find_data_dir("mnist")


def test_offline_download_is_one_clear_line(monkeypatch, tmp_path):
    from pg import free_port

    mirrored("mnist", f"http://127.0.0.1:{free_port()}/", tmp_path, monkeypatch)  # nothing listens
    with pytest.raises(SearchError, match="download failed .*pass --data-dir DIR") as e:
        find_data_dir("mnist")
    assert "\n" not in str(e.value)


def test_bytes_normalised_per_batch_give_the_same_floats_as_normalising_once():
    """Where float32 images would not fit (search.data.FLOATS_UP_TO) they stay uint8, a quarter
    of the memory; a batch of them normalises to the very same floats, so trials do not change."""
    from search._idx import read_idx
    from search.data import MNIST_NORM, _to_tensors

    images = read_idx(MNIST / "t10k-images-idx3-ubyte.gz")[:, None]
    labels = read_idx(MNIST / "t10k-labels-idx1-ubyte.gz")
    floats = _to_tensors(images, labels, torch.device("cpu"), MNIST_NORM, floats=True)
    packed = _to_tensors(images, labels, torch.device("cpu"), MNIST_NORM, floats=False)
    assert packed.pixels.dtype == torch.uint8 and packed.pixels.element_size() * 4 == floats.pixels.element_size()
    idx = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))[:128]
    assert torch.equal(packed.images(idx), floats.images(idx))
    assert torch.equal(packed.images(slice(100, 4196)), floats.images(slice(100, 4196)))
    assert packed.images(idx).stride() == floats.images(idx).stride()  # oneDNN picks kernels by strides


@needs_mnist
def test_a_known_dataset_is_decoded_once_then_read_from_its_copy(tmp_path, monkeypatch):
    import shutil

    from search.known import read_known

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    files = tmp_path / "mnist"
    shutil.copytree(MNIST, files)
    first = read_known("mnist", files)
    copies = list((tmp_path / "cache" / "mnist-search" / "decoded").glob("mnist-*.npz"))
    assert len(copies) == 1 and [a.shape for a in first] == [(60000, 1, 28, 28), (60000,), (10000, 1, 28, 28), (10000,)]
    again = read_known("mnist", files)
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(first, again, strict=True))
    # the copy is what the second read returned: a pixel changed in it shows
    x, y, tx, ty = again
    x = x.copy()
    x[0, 0, 0, 0] = 77
    np.savez(copies[0], train_x=x, train_y=y, test_x=tx, test_y=ty)
    assert read_known("mnist", files)[0][0, 0, 0, 0] == 77
    # a damaged copy is decoded again from the files; a changed file is a new copy, never the old one
    copies[0].write_bytes(b"PK\x03\x04 half a zip")
    assert np.array_equal(read_known("mnist", files)[0], first[0])
    label = next(files.glob("t10k-labels*"))
    label.write_bytes(label.read_bytes())  # same bytes, a new modification time
    os.utime(label, ns=(label.stat().st_atime_ns, label.stat().st_mtime_ns + 10**9))
    assert np.array_equal(read_known("mnist", files)[3], first[3])
    assert len(list(copies[0].parent.glob("mnist-*.npz"))) == 2
