"""Datasets known by name beyond MNIST: KMNIST, EMNIST letters and balanced, QMNIST.

They cannot be downloaded here, so the tests write files in their exact published formats
from real MNIST digits (EMNIST: images stored transposed, letters numbered from 1, every
split inside one gzip.zip; QMNIST: int32 label rows whose first column is the class) and
serve them from a real HTTP server on 127.0.0.1 as the download mirror."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import json
import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna
import pytest

from search.data import load_dataset
from search.errors import SearchError
from search.known import KNOWN, find_data_dir, identify, read_known

from conftest import MNIST, cli, needs_mnist, write_study

pytestmark = needs_mnist
N_TRAIN, N_TEST = 6_000, 1_000  # enough for the 5,000 validation images known datasets hold out


def idx_bytes(a: np.ndarray) -> bytes:
    """An array in IDX's published layout: magic (type, rank), big-endian sizes, big-endian data."""
    code = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C}[a.dtype]
    head = bytes([0, 0, code, a.ndim]) + b"".join(n.to_bytes(4, "big") for n in a.shape)
    return head + a.astype(a.dtype.newbyteorder(">")).tobytes()


@functools.lru_cache(maxsize=1)
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from search._idx import read_idx

    return (read_idx(MNIST / "train-images-idx3-ubyte.gz")[:N_TRAIN], read_idx(MNIST / "train-labels-idx1-ubyte.gz")[
        :N_TRAIN], read_idx(MNIST / "t10k-images-idx3-ubyte.gz")[:N_TEST],
            read_idx(MNIST / "t10k-labels-idx1-ubyte.gz")[:N_TEST])


def published(dataset: str) -> dict[str, bytes]:
    """Real digits as the dataset publishes its four files (.gz name -> bytes)."""
    x, y, tx, ty = digits()
    k = KNOWN[dataset]
    n = len(k.classes)

    def labels(y: np.ndarray) -> np.ndarray:  # every class present; EMNIST letters count from 1
        spread = (y.astype(np.int64) + 10 * (np.arange(len(y)) % 5)) % n + k.first_label
        if dataset == "qmnist":  # one row per image: class, NIST writer, ... (8 int32 columns)
            return np.stack([spread, *[np.arange(len(y)) + j for j in range(7)]], axis=1).astype(np.int32)
        return spread.astype(np.uint8)

    def images(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x.transpose(0, 2, 1)) if k.transposed else x

    parts = {"train_images": images(x), "train_labels": labels(y), "test_images": images(tx),
             "test_labels": labels(ty)}
    return {k.files[key] + ".gz": gzip.compress(idx_bytes(a), mtime=0) for key, a in parts.items()}


def write(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, blob in files.items():
        (folder / name).write_bytes(blob)
    return folder


def emnist_zip() -> bytes:
    """EMNIST's gzip.zip: every split's .gz files under gzip/."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for dataset in ("emnist-letters", "emnist-balanced"):
            for name, blob in published(dataset).items():
                z.writestr("gzip/" + name, blob)
    return buf.getvalue()


@pytest.mark.parametrize("dataset", ["kmnist", "emnist-letters", "emnist-balanced", "qmnist"])
def test_published_formats_read_upright_with_labels_from_zero(tmp_path, dataset):
    folder = write(tmp_path / dataset, published(dataset))
    x, y, tx, ty = read_known(dataset, folder)
    mx, my, mtx, _ = digits()
    assert x.shape == (N_TRAIN, 1, 28, 28) and tx.shape == (N_TEST, 1, 28, 28) and x.dtype == np.uint8
    assert (x[:, 0] == mx).all() and (tx[:, 0] == mtx).all()  # EMNIST's transposed images come back upright
    k = len(KNOWN[dataset].classes)
    assert y.min() == 0 and y.max() == k - 1 and y.dtype == np.int64
    assert (y == (my.astype(np.int64) + 10 * (np.arange(N_TRAIN) % 5)) % k).all()
    d = load_dataset(dataset, tmp_path, "cpu")  # a --data-dir holding a folder per dataset
    assert d.classes == k and d.class_names == KNOWN[dataset].classes
    assert len(d.train) == N_TRAIN - 5_000 and len(d.val) == 5_000 and len(d.test) == N_TEST
    facts = d.facts()
    assert facts["shape"] == [1, 28, 28] and facts["mean"] != [0.1307]  # their own mean and std, not MNIST's
    assert abs(d.train.images().mean().item()) < 0.05


def test_class_names_are_the_datasets_own():
    assert KNOWN["emnist-letters"].classes[:3] == ("a", "b", "c") and len(KNOWN["emnist-letters"].classes) == 26
    balanced = KNOWN["emnist-balanced"].classes
    assert len(balanced) == 47 and balanced[9:12] == ("9", "A", "B") and balanced[36:] == tuple("abdefghnqrt")
    assert KNOWN["kmnist"].classes[0] == "o" and len(KNOWN["qmnist"].classes) == 10


def test_emnist_found_where_its_zip_unpacks(tmp_path):
    """A user who unpacked gzip.zip by hand passes its folder: the files are in gzip/."""
    write(tmp_path / "gzip", published("emnist-balanced"))
    assert find_data_dir("emnist-balanced", tmp_path) == tmp_path / "gzip"


def test_a_label_outside_the_classes_is_one_line(tmp_path):
    files = published("emnist-letters")
    name = KNOWN["emnist-letters"].files["test_labels"] + ".gz"
    raw = bytearray(gzip.decompress(files[name]))
    raw[-1] = 0  # letters count from 1: a 0 is not a letter
    files[name] = gzip.compress(bytes(raw))
    folder = write(tmp_path / "emnist-letters", files)
    with pytest.raises(SearchError, match=r"test labels go from 0 to 26; expected 26 classes from 1") as e:
        read_known("emnist-letters", folder)
    assert str(folder) in str(e.value) and "\n" not in str(e.value)


def test_kmnist_is_told_from_mnist_by_its_published_checksum(tmp_path):
    """KMNIST's files have MNIST's names: a folder of MNIST is not taken for KMNIST."""
    assert identify(MNIST) == "mnist"
    with pytest.raises(SearchError, match="holds mnist, not kmnist"):
        find_data_dir("kmnist", MNIST, download=False)


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A real HTTP server on 127.0.0.1 serving a folder; the user cache fresh."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    for name in ("kmnist", "emnist-letters", "emnist-balanced", "qmnist"):
        monkeypatch.setitem(KNOWN, name, replace(KNOWN[name], mirrors=(url,), system_dirs=()))
    yield folder, server
    server.shutdown()


@pytest.mark.parametrize("dataset", ["kmnist", "qmnist"])
def test_download_is_checked_against_the_published_checksums(served, tmp_path, monkeypatch, dataset):
    folder, _ = served
    files = write(folder, published(dataset))
    # these are MNIST digits, not the published files: the real checksums refuse them
    with pytest.raises(SearchError, match=f"checksum mismatch for {KNOWN[dataset].files['train_images']}"):
        find_data_dir(dataset)
    cache = tmp_path / "cache" / "mnist-search" / dataset
    assert not any(cache.glob("*.gz")) and not any(cache.glob("*.part"))
    # the same files with their own checksums recorded: downloaded, and read as the dataset
    sums = {key: hashlib.md5((files / (stem + ".gz")).read_bytes()).hexdigest()
            for key, stem in KNOWN[dataset].files.items()}
    monkeypatch.setitem(KNOWN, dataset, replace(KNOWN[dataset], gz_md5=sums))
    assert find_data_dir(dataset) == cache
    assert identify(cache) == dataset
    assert read_known(dataset, cache)[1].max() == 9


def test_emnist_zip_downloads_once_for_both_splits(served, tmp_path, monkeypatch):
    folder, server = served
    blob = emnist_zip()
    (folder / "gzip.zip").write_bytes(blob)
    with pytest.raises(SearchError, match="checksum mismatch for gzip.zip"):  # not the published zip
        find_data_dir("emnist-letters")
    cache = tmp_path / "cache" / "mnist-search"
    assert not list(cache.rglob("*.gz")) and not list(cache.rglob("*.part"))
    archive = replace(KNOWN["emnist-letters"].archive, md5=hashlib.md5(blob).hexdigest())
    for name in ("emnist-letters", "emnist-balanced"):
        monkeypatch.setitem(KNOWN, name, replace(KNOWN[name], archive=archive))
    assert find_data_dir("emnist-letters") == cache / "emnist-letters"
    server.shutdown()  # the balanced split came out of the same zip: no second download
    assert find_data_dir("emnist-balanced") == cache / "emnist-balanced"
    assert sorted(p.name for p in cache.iterdir()) == ["emnist-balanced", "emnist-letters"]  # the zip is gone
    assert read_known("emnist-balanced", cache / "emnist-balanced")[1].max() == 46


def test_a_study_on_emnist_letters_stores_its_26_classes(tmp_path, monkeypatch):
    write(tmp_path / "data" / "emnist-letters", published("emnist-letters"))
    monkeypatch.setenv("SEARCH_DATA_DIR", str(tmp_path / "data"))
    path = write_study(tmp_path, "letters", dataset="emnist-letters", n_trials=1, train_size=500)
    r = cli("run", "--study", path)
    assert r.exit_code == 0, r.output
    assert "26 classes" in r.output
    study = optuna.load_study(study_name="letters", storage=f"sqlite:///{tmp_path / 'search.db'}")
    assert study.user_attrs["dataset"] == "emnist-letters"
    assert study.user_attrs["data"]["classes"][:3] == ["a", "b", "c"] and len(study.user_attrs["data"]["classes"]) == 26
    shown = json.loads(cli("show", "--study", "letters", "--json").stdout)
    assert [t["state"] for t in shown["trials"]] == ["COMPLETE"] and shown["best_params"]["model"] == "mlp"
