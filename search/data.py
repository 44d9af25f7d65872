"""Datasets -> tensors resident on the device, split train / validation / test.

IDX files are read directly (gzip or not); no torchvision and no per-sample Dataset.
The 60,000 training images split 55,000 train / 5,000 validation with a fixed seed that
does not depend on the study, so every trial and every retrain sees the same split.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models import Shape
from search._files import read_bytes
from search.errors import SearchError

__all__ = ["DATASETS", "DEFAULT_DATASET", "Dataset", "FILES", "MAX_IDX", "MD5", "MEAN", "MIRRORS", "N_VAL", "STD", "SPLIT_SEED",
           "SYSTEM_DIRS", "Split", "TRAIN_POOL", "download_dataset", "find_data_dir", "identify", "load_arrays",
           "load_dataset", "parse_idx", "read_idx", "split_indices", "user_cache_dir"]

SPLIT_SEED = 20_240_101
N_VAL = 5_000
MAX_IDX = 1 << 30  # the largest IDX file read (MNIST's training images: 47 MB)
DEFAULT_DATASET = "mnist"  # what a study file or config that names no dataset trains on
TRAIN_POOL = 55_000  # the 60,000 training images split 55,000 train / 5,000 validation
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# md5 of the uncompressed files; a download must match, and the small test-label file
# tells which dataset a directory holds.
MD5 = {
    "mnist": {
        "train_images": "6bbc9ace898e44ae57da46a324031adb",
        "train_labels": "a25bea736e30d166cdddb491f175f624",
        "test_images": "2646ac647ad5339dbf082846283269ea",
        "test_labels": "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion-mnist": {
        "train_images": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train_labels": "9018921c3c673c538a1fc5bad174d6f9",
        "test_images": "8181f5470baa50b63fa0f6fddb340f0a",
        "test_labels": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}
DATASETS = tuple(MD5)  # the datasets the service knows, by their checksums
MIRRORS = {
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/", "https://yann.lecun.com/exdb/mnist/"],
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
}
SYSTEM_DIRS = {"mnist": [Path("/usr/share/datasets/mnist")],
               "fashion-mnist": [Path("/usr/share/datasets/fashion-mnist")]}
# Per-pixel statistics of the MNIST training set; close enough for its cousins too.
MEAN, STD = 0.1307, 0.3081


@dataclass(frozen=True)
class Split:
    """Normalised float images (N, 1, 28, 28) and int64 labels, on one device."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split
    classes: int  # labels are 0 .. classes - 1

    @property
    def shape(self) -> Shape:
        """What the data fixes about a network: its input (channels, height, width) and classes."""
        channels, height, width = self.train.x.shape[1:]
        return Shape(channels, height, width, self.classes)


# ---------------------------------------------------------------- IDX files


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (gzip-compressed or not) into a numpy array of its own shape."""
    raw = read_bytes(path, "IDX file", MAX_IDX, "replace it with a good copy")
    try:
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise SearchError(f"{path}: cannot read IDX file ({e}); replace it with a good copy") from None
    return parse_idx(raw, path)


def parse_idx(raw: bytes, path: Path | str = "<bytes>") -> np.ndarray:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise SearchError(f"{path}: not an IDX file of unsigned bytes (bad magic {raw[:4].hex() or 'empty'}); "
                          "replace it with a good copy")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise SearchError(f"{path}: corrupt IDX header ({ndim} dimensions); replace it with a good copy")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise SearchError(f"{path}: corrupt IDX file: header says {shape} = {expected} bytes, file has {len(raw)}; "
                          "replace it with a good copy")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find_file(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def _has_all(directory: Path) -> bool:
    return all(_find_file(directory, stem) for stem in FILES.values())


# ---------------------------------------------------------------- lookup


def user_cache_dir(dataset: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mnist-search" / dataset


def identify(directory: Path) -> str | None:
    """Which known dataset a directory holds, from its test labels' checksum (None: unknown)."""
    path = _find_file(directory, FILES["test_labels"])
    try:
        raw = read_bytes(path, "IDX file", MAX_IDX) if path else b""
        digest = hashlib.md5(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).hexdigest()
    except (SearchError, OSError, EOFError, gzip.BadGzipFile):
        return None
    return next((name for name, sums in MD5.items() if sums["test_labels"] == digest), None)


def find_data_dir(dataset: str, data_dir: str | Path | None = None, download: bool = True) -> Path:
    """The directory holding the dataset's four IDX files.

    Lookup: the `data_dir` given (or its subfolder named after the dataset), the user
    cache, the system dirs (Debian's dataset packages), then a checksummed download into
    the user cache. A given `data_dir` that holds another known dataset (MNIST when
    Fashion-MNIST is wanted) is passed over, so one SEARCH_DATA_DIR serves both.
    """
    candidates = [user_cache_dir(dataset), *SYSTEM_DIRS.get(dataset, [])]
    note = ""
    if data_dir is not None:
        d = Path(data_dir)
        if not d.is_dir():
            raise SearchError(f"data directory {d} does not exist: pass --data-dir (or SEARCH_DATA_DIR) "
                              f"pointing at the folder with the four {dataset} IDX files")
        for option in (d / dataset, d):
            if option.is_dir() and _has_all(option) and identify(option) in (dataset, None):
                return option
        held = identify(d) if _has_all(d) else None
        if held is None:
            missing = [stem for stem in FILES.values() if not _find_file(d, stem)]
            raise SearchError(f"data directory {d} lacks {missing[0]}[.gz] ({len(missing)} of 4 {dataset} "
                              "IDX files missing): put the files there or point --data-dir elsewhere")
        download = False  # a directory was given: look in the usual places too, but fetch nothing
        note = f"{d} holds {held}, not {dataset}; "
    for c in candidates:
        if c.is_dir() and _has_all(c):
            return c
    if download:
        return download_dataset(dataset, user_cache_dir(dataset))
    raise SearchError(f"{note}{dataset} not found in {', '.join(map(str, candidates))}: pass --data-dir DIR "
                      f"with its four IDX files" + (f" (apt-get install dataset-{dataset})"
                                                    if dataset == "fashion-mnist" else ""))


def download_dataset(dataset: str, target: Path) -> Path:
    """Fetch the four files into `target`, checking each one's md5; fail with one line."""
    target.mkdir(parents=True, exist_ok=True)
    for key, stem in FILES.items():
        if _find_file(target, stem):
            continue
        errors = []
        for mirror in MIRRORS[dataset]:
            try:
                with urllib.request.urlopen(mirror + stem + ".gz", timeout=15) as r:
                    blob = r.read()
                raw = gzip.decompress(blob)
            except Exception as e:  # any network or gzip failure means: try the next mirror
                errors.append(f"{type(e).__name__}: {e}")
                continue
            if hashlib.md5(raw).hexdigest() != MD5[dataset][key]:
                errors.append(f"checksum mismatch for {stem} from {mirror}")
                continue
            tmp = target / (stem + ".gz.part")
            tmp.write_bytes(blob)
            tmp.replace(target / (stem + ".gz"))
            break
        else:
            raise SearchError(f"{dataset} is not on this machine and the download failed ({errors[-1][:80]}): "
                              f"pass --data-dir DIR (or set SEARCH_DATA_DIR) with the four IDX files")
    return target


# ---------------------------------------------------------------- tensors


def _to_tensors(images: np.ndarray, labels: np.ndarray, device: torch.device) -> Split:
    x = torch.from_numpy(images.copy()).to(device)
    # Normalising once costs 4x the memory of uint8 but nothing per step.
    x = ((x.float() / 255.0 - MEAN) / STD).unsqueeze(1)
    return Split(x.contiguous(), torch.from_numpy(labels.astype(np.int64)).to(device))


def _check_pair(images: np.ndarray, labels: np.ndarray, where: Path) -> None:
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1 or len(images) != len(labels):
        raise SearchError(f"{where}: IDX files have shapes {images.shape} and {labels.shape}; expected "
                          "(N, 28, 28) images with N labels")
    if labels.size and labels.max() > 9:
        raise SearchError(f"{where}: labels go up to {labels.max()}; expected classes 0..9")


def load_arrays(directory: Path) -> dict[str, np.ndarray]:
    arrays = {key: read_idx(_find_file(directory, stem) or directory / stem) for key, stem in FILES.items()}
    _check_pair(arrays["train_images"], arrays["train_labels"], directory)
    _check_pair(arrays["test_images"], arrays["test_labels"], directory)
    if len(arrays["train_labels"]) <= N_VAL:
        raise SearchError(f"{directory}: only {len(arrays['train_labels'])} training images; expected more "
                          f"than the {N_VAL} held out for validation")
    return arrays


def split_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    return perm[N_VAL:], np.sort(perm[:N_VAL])  # train stays shuffled: its first n are a fair sample


@functools.lru_cache(maxsize=4)
def _load(dataset: str, directory: Path, device: str) -> Dataset:
    a = load_arrays(directory)
    dev = torch.device(device)
    train_idx, val_idx = split_indices(len(a["train_labels"]))
    return Dataset(
        name=dataset,
        train=_to_tensors(a["train_images"][train_idx], a["train_labels"][train_idx], dev),
        val=_to_tensors(a["train_images"][val_idx], a["train_labels"][val_idx], dev),
        test=_to_tensors(a["test_images"], a["test_labels"], dev),
        classes=int(max(a["train_labels"].max(), a["test_labels"].max())) + 1,
    )


def load_dataset(dataset: str, data_dir: str | Path | None, device: torch.device | str) -> Dataset:
    """The dataset on `device`, read once per process and kept resident."""
    directory = find_data_dir(dataset, data_dir).resolve()
    return _load(dataset, directory, str(device))
