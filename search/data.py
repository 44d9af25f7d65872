"""Datasets -> tensors resident on the device, split train / validation / test.

Known datasets (MNIST, Fashion-MNIST, KMNIST, EMNIST letters and balanced, QMNIST) are IDX
files found or downloaded by name (search/known.py); the user's own images come from
search/sources.py (class folders, .npz, IDX by path). No torchvision and no per-sample
Dataset. The training images split train / validation with a fixed seed that does not
depend on the study (known datasets hold out 5,000: MNIST 55,000 / 5,000), so every trial
and every retrain sees the same split; data without a test part has one carved out the
same way. Normalisation: MNIST's published mean and std for MNIST and Fashion-MNIST (as
always), the per-channel mean and std of the training split for every other dataset.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models import Shape
from search import _check
from search._idx import FILES, read_idx
from search.device import free_memory, gib
from search.errors import SearchError
from search.known import KNOWN, find_data_dir, read_known
from search.sources import Arrays, DataSource, parse_source, read_source

__all__ = ["DATASETS", "DEFAULT_DATASET", "DataSource", "Dataset", "FILES", "FLOATS_UP_TO", "MEAN", "MNIST_NORM",
           "N_VAL", "Norm", "SPLIT_SEED", "STD", "Split", "TRAIN_POOL", "load_dataset", "parse_train_size", "locate", "parse_dataset",
           "read_idx", "source", "split_indices", "stored_source"]

SPLIT_SEED = 20_240_101
N_VAL = 5_000
DEFAULT_DATASET = "mnist"  # what a study file or config that names no dataset trains on
TRAIN_POOL = 55_000  # MNIST's 60,000 training images split 55,000 train / 5,000 validation
MAX_TRAIN_SIZE = 1_000_000_000
DATASETS = tuple(KNOWN)  # the datasets the service knows by name (search/known.py)
# Per-pixel statistics of the MNIST training set (Fashion-MNIST's studies have always used them too).
MEAN, STD = 0.1307, 0.3081


@dataclass(frozen=True)
class Norm:
    """Per-channel mean and std of pixel values in 0..1: images are stored as (x - mean) / std."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def background(self) -> tuple[float, ...]:
        """A black pixel after normalisation, per channel (what augmentation pads with)."""
        return tuple((0.0 - m) / s for m, s in zip(self.mean, self.std, strict=True))

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) -> normalised float32."""
        x = images.float().div_(255.0)  # in place: the same numbers, one allocation fewer per pass
        if len(self.mean) == 1:  # python scalars: MNIST's numbers exactly as they always were
            return x.sub_(self.mean[0]).div_(self.std[0])
        shape = (1, len(self.mean), 1, 1)
        mean = torch.tensor(self.mean, device=x.device).view(shape)
        return (x - mean) / torch.tensor(self.std, device=x.device).view(shape)

    @classmethod
    def of(cls, images: np.ndarray, chunk: int = 4096) -> Norm:
        """Measured on uint8 images (N, C, H, W) in float64, a chunk at a time (CIFAR-10 whole
        in float64 would be 1.2 GB), rounded to 6 digits; a std of 0 becomes 1."""
        count = images.shape[0] * images.shape[2] * images.shape[3]
        total = sum(images[i:i + chunk].sum(axis=(0, 2, 3), dtype=np.float64) for i in range(0, len(images), chunk))
        mean = np.asarray(total) / count / 255.0
        dev = mean[None, :, None, None]
        squares = sum((((images[i:i + chunk] / 255.0) - dev) ** 2).sum(axis=(0, 2, 3)) for i in
                      range(0, len(images), chunk))
        std = np.sqrt(np.asarray(squares) / count)
        return cls(tuple(round(float(m), 6) for m in mean), tuple(round(float(v), 6) if v > 0 else 1.0 for v in std))


MNIST_NORM = Norm((MEAN,), (STD,))


@dataclass(frozen=True)
class Split:
    """Images (N, C, H, W) resident on one device, int64 labels, and the normalisation that
    turns them into the floats a network sees. `pixels` are normalised float32 when they fit
    comfortably (normalising once costs nothing per step), else uint8 normalised per batch -
    a quarter of the memory (CIFAR-10: 150 MB), bit for bit the same floats. Measured on
    MNIST (2 cores, AMD EPYC): per-batch normalising made an MLP epoch ~20 % slower, hence
    floats wherever they fit (`FLOATS_UP_TO`)."""

    pixels: torch.Tensor
    y: torch.Tensor
    norm: Norm

    def __len__(self) -> int:
        return len(self.y)

    def images(self, index: torch.Tensor | slice = slice(None)) -> torch.Tensor:
        """Normalised float32 images of a batch (indices or a slice; all by default)."""
        batch = self.pixels[index]
        return batch if batch.is_floating_point() else self.norm.apply(batch)

    @property
    def shape(self) -> tuple[int, int, int]:
        c, h, w = self.pixels.shape[1:]
        return c, h, w

    def take(self, pixels: torch.Tensor, y: torch.Tensor) -> Split:
        """Other images of the same data (a subset, train and validation joined)."""
        return Split(pixels, y, self.norm)


@dataclass(frozen=True)
class Dataset:
    name: str  # the source, as messages and the report show it
    train: Split
    val: Split
    test: Split
    class_names: tuple[str, ...]  # label i is class_names[i]
    carved: bool = False  # the test part was carved out of the data's only part
    val_given: bool = False  # the data came with its own validation part (val/, x_val)

    @property
    def classes(self) -> int:
        return len(self.class_names)

    @property
    def shape(self) -> Shape:
        """What the data fixes about a network: its input (channels, height, width) and classes."""
        channels, height, width = self.train.shape
        return Shape(channels, height, width, self.classes)

    def facts(self) -> dict[str, Any]:
        """What a study stores of its data, so that export, train and the report use exactly it."""
        return {"shape": list(self.train.shape), "classes": list(self.class_names),
                "mean": list(self.train.norm.mean), "std": list(self.train.norm.std),
                "images": [len(self.train), len(self.val), len(self.test)], "test": "carved" if self.carved else "given",
                **({"val": "given"} if self.val_given else {})}

    def describe(self) -> str:
        """One line for the run header: '8x8, 10 classes; 1,412 train, 128 val, 257 test (carved out)'."""
        c, h, w = self.train.shape
        return (f"{self.name}: {h}x{w}" + ("" if c == 1 else f"x{c}") + f", {self.classes} classes; "
                f"{len(self.train):,} train, {len(self.val):,} val, {len(self.test):,} test"
                + (" (carved out, fixed seed)" if self.carved else "") + (" (val given)" if self.val_given else ""))


# ---------------------------------------------------------------- tensors


FLOATS_UP_TO = 0.25  # of the device's free memory: float32 images up to this share, uint8 beyond


def _to_tensors(images: np.ndarray, labels: np.ndarray, device: torch.device, norm: Norm,
                floats: bool = True) -> Split:
    """uint8 (N, C, H, W) -> resident on the device: normalised once (`floats`), or kept as
    bytes and normalised per batch by `Split.images`."""
    # a copy: writable, canonical strides (oneDNN picks its convolution by strides: a size-1
    # axis with stride 1 changed LeNet-5's numerics in the 7th digit)
    pixels = torch.from_numpy(images.copy()).to(device)
    if floats:
        pixels = norm.apply(pixels)
    return Split(pixels.contiguous(), torch.from_numpy(labels.astype(np.int64)).to(device), norm)


def _resident(n_bytes: int, device: torch.device, where: str) -> bool:
    """Whether images of `n_bytes` (as uint8) stay as floats on the device; one line when even
    the bytes do not fit."""
    free = free_memory(device)
    if free is not None and n_bytes > 0.8 * free:
        raise SearchError(f"{where}: its images need {gib(n_bytes)} resident on {device}, which has {gib(free)} free: "
                          "use fewer images (a smaller folder or .npz) or a device with more memory")
    return free is None or 4 * n_bytes <= FLOATS_UP_TO * free


def split_indices(n: int, n_val: int = N_VAL, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out) indices of n images: the held out sorted, the kept shuffled (its first
    n are a fair sample), from a seed no study changes."""
    perm = np.random.default_rng(seed).permutation(n)
    return perm[n_val:], np.sort(perm[:n_val])


def _held_out(n: int, fraction: float, what: str, where: str) -> int:
    k = round(n * fraction)
    if not 1 <= k < n:
        raise SearchError(f"{where}: {n} images leave {k} for {what} at a fraction of {fraction:g}; give more images "
                          f"or another dataset.{what.split()[0]}_fraction")
    return k


@functools.lru_cache(maxsize=4)
def _load(dataset: str, directory: Path, device: str) -> Dataset:
    x, y, test_x, test_y = read_known(dataset, directory)
    if len(y) <= N_VAL:
        raise SearchError(f"{directory}: only {len(y)} training images; expected more than the {N_VAL} held out "
                          "for validation")
    train_idx, val_idx = split_indices(len(y))
    norm = MNIST_NORM if KNOWN[dataset].mnist_norm else Norm.of(x[train_idx])
    return _dataset(dataset, x, y, train_idx, val_idx, test_x, test_y, norm, KNOWN[dataset].classes, False,
                    torch.device(device), str(directory))


@functools.lru_cache(maxsize=4)
def _load_source(src: DataSource, device: str) -> Dataset:
    a: Arrays = read_source(src)
    x, y, carved = a.train_x, a.train_y, a.test_x is None
    if carved:  # one part only: carve the test images out first, with the fixed seed
        keep, test = split_indices(len(y), _held_out(len(y), src.test_fraction, "test images", src.path),
                                   SPLIT_SEED + 1)
        test_x, test_y, x, y = x[test], y[test], x[np.sort(keep)], y[np.sort(keep)]
    else:
        assert a.test_x is not None and a.test_y is not None
        test_x, test_y = a.test_x, a.test_y
    if a.val_x is not None and a.val_y is not None:  # its own validation part: after the training images
        train_idx, val_idx = np.random.default_rng(SPLIT_SEED).permutation(len(y)), np.arange(len(y), len(y) + len(a.val_y))
        x, y = np.concatenate([x, a.val_x]), np.concatenate([y, a.val_y])
    else:
        train_idx, val_idx = split_indices(len(y), _held_out(len(y), src.val_fraction, "val images", src.path))
    return _dataset(str(src), x, y, train_idx, val_idx, test_x, test_y, Norm.of(x[train_idx]), a.class_names, carved,
                    torch.device(device), src.path, val_given=a.val_x is not None)


def _dataset(name: str, x: np.ndarray, y: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray,
             test_x: np.ndarray, test_y: np.ndarray, norm: Norm, class_names: tuple[str, ...], carved: bool,
             device: torch.device, where: str, val_given: bool = False) -> Dataset:
    """uint8 images (N, C, H, W) split by index and made resident on the device, as floats
    where they fit (`_resident`); each split large enough to train on (a batch of two) or
    to evaluate, checked before any training."""
    for part, n, least in (("training", len(train_idx), 2), ("validation", len(val_idx), 1), ("test", len(test_y), 1)):
        if n < least:
            raise SearchError(f"{where}: {n} {part} image{'s' * (n != 1)}; expected at least {least}: give more "
                              "images (or other val_fraction / test_fraction)")
    floats = _resident(x.size + test_x.size, device, where)

    def split(images: np.ndarray, labels: np.ndarray) -> Split:
        return _to_tensors(images, labels, device, norm, floats)

    return Dataset(name=name, train=split(x[train_idx], y[train_idx]), val=split(x[val_idx], y[val_idx]),
                   test=split(test_x, test_y), class_names=class_names, carved=carved, val_given=val_given)


def source(dataset: str | DataSource) -> DataSource:
    """A known dataset's name as a source (sources pass through)."""
    if isinstance(dataset, DataSource):
        return dataset
    if dataset not in DATASETS:
        raise SearchError(f"unknown dataset {dataset!r}: expected one of {', '.join(DATASETS)}")
    return DataSource(name=dataset)


def locate(dataset: str | DataSource, data_dir: str | Path | None) -> None:
    """Check, cheaply, that the dataset can be found (before workers start)."""
    src = source(dataset)
    if src.known:
        find_data_dir(src.name, data_dir)


def load_dataset(dataset: str | DataSource, data_dir: str | Path | None, device: torch.device | str) -> Dataset:
    """The dataset on `device`, read once per process and kept resident."""
    src = source(dataset)
    if not src.known:
        return _load_source(src, str(device))
    directory = find_data_dir(src.name, data_dir).resolve()
    return _load(src.name, directory, str(device))


def parse_train_size(raw: Any, where: str) -> int | None:
    """`train_size:` the first N training images of each trial (None, the default: all)."""
    return None if raw is None else _check.integer(raw, where, "train_size", 2, MAX_TRAIN_SIZE)  # a batch of 2


def parse_dataset(raw: Any, where: str, base: Path) -> DataSource:
    """A study file's or config's `dataset:` (see search/sources.py)."""
    return parse_source(raw, where, base, DATASETS)


def stored_source(stored: str | dict[str, Any]) -> DataSource:
    """The source a study stored (`DataSource.stored()`: a name, or a mapping with an absolute path)."""
    return parse_source(stored, "the stored study", Path("/"), DATASETS)
