"""A study file's or config's `dataset:` -> a `DataSource`; a user's image files -> uint8 arrays.

`dataset: mnist` (fashion-mnist, kmnist, emnist-letters, emnist-balanced, qmnist) is a
dataset known by name, found or downloaded and checked (search/known.py). `dataset: {path: letters}` names the user's own images, relative to the
study file:
- a folder with one sub-folder of images per class (PNG, JPEG, BMP; torchvision's
  ImageFolder layout), optionally split into `train/` and `test/` and/or `val/` folders of
  the same classes (a given validation part replaces the one held out of the training images);
- a NumPy `.npz` with `x_train`, `y_train` and optionally `x_test`, `y_test` and `x_val`,
  `y_val`, images as (N, H, W), (N, H, W, C) or (N, C, H, W) unsigned bytes;
- a folder with an IDX quadruple of any image size and class count (`format: idx`);
- CIFAR-10's or CIFAR-100's python batches as published (`cifar-10-batches-py/`,
  `cifar-100-python/`), read by an unpickler that builds nothing but NumPy arrays.
Optional keys: `format` (folder | npz | idx | cifar; else told by the path), `val_fraction` (of the
training images held out for validation; 1/12 by default, MNIST's 5,000 of 60,000),
`test_fraction` (carved out when the data has no test part; 1/7 by default, MNIST's
10,000 of 70,000), `classes` (names in label order). Every mistake is one line naming the
file and what was expected.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError  # Pillow comes with matplotlib

from search import _check
from search._files import read_bytes
from search._idx import FILES, find_file, read_idx
from search.errors import SearchError

__all__ = ["CIFAR10", "CIFAR100", "DEFAULT_TEST_FRACTION", "DEFAULT_VAL_FRACTION", "FORMATS", "IMAGE_SUFFIXES",
           "MAX_CIFAR", "MAX_NPZ", "Arrays", "DataSource", "parse_source", "read_source", "source_text"]

FORMATS = ("folder", "npz", "idx", "cifar")
CIFAR10 = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
CIFAR100 = ("train", "test", "meta")
MAX_CIFAR = 1 << 30
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
DEFAULT_VAL_FRACTION = 5_000 / 60_000  # so MNIST as files splits exactly as MNIST by name
DEFAULT_TEST_FRACTION = 10_000 / 70_000
MAX_NPZ = 8 << 30
_KEYS = ("path", "format", "val_fraction", "test_fraction", "classes")


@dataclass(frozen=True)
class DataSource:
    """Where a dataset comes from: a known name, or the user's files (an absolute path)."""

    name: str = ""  # a dataset known by name (search.known.KNOWN)
    path: str = ""
    format: str = ""
    val_fraction: float = DEFAULT_VAL_FRACTION
    test_fraction: float = DEFAULT_TEST_FRACTION
    classes: tuple[str, ...] = ()

    @property
    def known(self) -> bool:
        return bool(self.name)

    def stored(self) -> str | dict[str, Any]:
        """As studies, configs and checkpoints store it: the name, or a mapping (defaults left out)."""
        if self.known:
            return self.name
        out: dict[str, Any] = {"path": self.path, "format": self.format}
        if self.val_fraction != DEFAULT_VAL_FRACTION:
            out["val_fraction"] = self.val_fraction
        if self.test_fraction != DEFAULT_TEST_FRACTION:
            out["test_fraction"] = self.test_fraction
        if self.classes:
            out["classes"] = list(self.classes)
        return out

    def __str__(self) -> str:
        return source_text(self.stored())


def source_text(stored: str | dict[str, Any]) -> str:
    """A stored dataset as people read it: 'mnist', 'folder:/data/digits' (no file is touched)."""
    return stored if isinstance(stored, str) else f"{stored.get('format')}:{stored.get('path')}"


def parse_source(raw: Any, where: str, base: Path, known: tuple[str, ...]) -> DataSource:
    """`dataset:` as written (a known name, or a mapping with `path`), paths relative to `base`."""
    if isinstance(raw, str):
        if raw in known:
            return DataSource(name=raw)
        if raw.lower().replace("-", "").startswith("cifar"):
            raise SearchError(f"{where}: dataset: {_check.short(raw)} is read from its python batches, not by name: "
                              "download and unpack them, then write dataset: {path: cifar-10-batches-py}")
        raise SearchError(f"{where}: dataset: unknown dataset {_check.short(raw)}; expected one of "
                          f"{', '.join(known)}, or your own images as {{path: FOLDER_OR_NPZ}}")
    doc = _check.mapping(raw, where, "dataset", "a dataset name or a mapping with path (and format, "
                                                "val_fraction, test_fraction, classes)")
    _check.keys(doc, _KEYS, where, "dataset")
    if not isinstance(doc.get("path"), str) or not doc["path"].strip():
        raise SearchError(f"{where}: dataset.path: expected the path of a folder or an .npz file, got "
                          f"{_check.short(doc.get('path'))}")
    path = Path(doc["path"]).expanduser()
    path = (path if path.is_absolute() else base / path).resolve()
    if not path.exists():
        raise SearchError(f"{where}: dataset.path: {path} does not exist (paths are relative to the file's folder)")
    fmt = doc.get("format") or _guess_format(path)
    fmt = _check.choice(fmt, FORMATS, where, "dataset.format")
    val, test = (float(_check.number(doc.get(key, default), where, f"dataset.{key}", 0, 0.9, low_open=True))
                 for key, default in (("val_fraction", DEFAULT_VAL_FRACTION), ("test_fraction", DEFAULT_TEST_FRACTION)))
    classes = doc.get("classes", [])
    if not isinstance(classes, list) or not all(isinstance(c, (str, int)) for c in classes):
        raise SearchError(f"{where}: dataset.classes: expected a list of class names, got {_check.short(classes)}")
    return DataSource(path=str(path), format=fmt, val_fraction=val, test_fraction=test,
                      classes=tuple(str(c) for c in classes))


def _guess_format(path: Path) -> str:
    if path.is_file():
        return "npz" if path.suffix == ".npz" else "unknown"
    if find_file(path, FILES["train_images"]):
        return "idx"
    return "cifar" if _cifar_files(path) else "folder"


@dataclass(frozen=True)
class Arrays:
    """A dataset as read: uint8 images (N, C, H, W), int64 labels, the test part if the data has
    one, and the class names in label order."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray | None
    test_y: np.ndarray | None
    class_names: tuple[str, ...]
    val_x: np.ndarray | None = None  # the data's own validation part, where it has one
    val_y: np.ndarray | None = None


def read_source(src: DataSource) -> Arrays:
    path = Path(src.path)
    reader = {"folder": _read_folder, "npz": _read_npz, "idx": _read_idx, "cifar": _read_cifar}[src.format]
    arrays = reader(path)
    names = src.classes or arrays.class_names
    k = len(names)
    for part, y in (("train", arrays.train_y), ("val", arrays.val_y), ("test", arrays.test_y)):
        if y is not None and y.size and (y.min() < 0 or y.max() >= k):
            raise SearchError(f"{path}: {part} labels go from {y.min()} to {y.max()}, outside the {k} classes "
                              f"{_names(names)}; fix the labels or list every class under dataset.classes")
    if src.classes and arrays.class_names and len(src.classes) != len(arrays.class_names):
        raise SearchError(f"{path}: dataset.classes names {len(src.classes)} classes, the data has "
                          f"{len(arrays.class_names)}: name each class once, in label order")
    counts = np.bincount(arrays.train_y, minlength=k)
    if (counts == 0).any():
        empty = names[int(np.argmin(counts))]
        raise SearchError(f"{path}: class {empty!r} has no training images; remove it or add images")
    return replace(arrays, class_names=tuple(names))


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")


# ---------------------------------------------------------------- class folders


def _read_folder(path: Path) -> Arrays:
    """ImageFolder's layout: PATH/CLASS/*.png, or PATH/train/CLASS/... beside PATH/test/CLASS/...
    and/or PATH/val/CLASS/... (ImageNet's train/ and val/); classes are the sub-folder names, sorted."""
    parts = {p.name: p for p in path.iterdir() if p.is_dir()} if path.is_dir() else {}
    if not parts:
        raise SearchError(f"{path}: expected a folder of class folders (PATH/CLASS/IMAGE.png), found none")
    if "train" in parts and len(parts) > 1 and set(parts) <= {"train", "test", "val"}:
        train_x, train_y, names = _read_classes(parts["train"], None)
        held: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for part in ("val", "test"):
            if part in parts:
                x, y, _ = _read_classes(parts[part], names)
                _same_shape(train_x, x, parts[part])
                held[part] = (x, y)
        test_x, test_y = held.get("test", (None, None))
        val_x, val_y = held.get("val", (None, None))
        return Arrays(train_x, train_y, test_x, test_y, names, val_x, val_y)
    x, y, names = _read_classes(path, None)
    return Arrays(x, y, None, None, names)


def _read_classes(path: Path, names: tuple[str, ...] | None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    folders = sorted(p for p in path.iterdir() if p.is_dir())
    found = tuple(p.name for p in folders)
    if names is not None and found != names:
        raise SearchError(f"{path}: class folders {_names(found)} differ from the training classes {_names(names)}; "
                          "give train/ and test/ the same class folders")
    entries = []
    for label, folder in enumerate(folders):
        files = [f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            raise SearchError(f"{folder}: class {folder.name!r} has no images (.png, .jpg, .bmp); add some or "
                              "remove the folder")
        entries += [(f.name, label, f) for f in files]
    # In file-name order across the classes (ImageFolder goes class by class): images named by
    # their index in another format (00000.png, ...) come back in that format's order, so the
    # fixed split picks the same images and trials give the same results.
    entries.sort(key=lambda e: (e[0], e[1]))
    images, labels, shape, first = [], [], None, None
    for _, label, f in entries:
        image = _read_image(f)
        if shape is None:
            shape, first = image.shape, f
        elif image.shape != shape:
            raise SearchError(f"{f}: image of {_size(image.shape)}, but {first} is {_size(shape)}: resize the "
                              "images to one size")
        images.append(image)
        labels.append(label)
    if not images:
        raise SearchError(f"{path}: no class folders with images")
    return np.stack(images), np.array(labels, dtype=np.int64), found


def _read_image(path: Path) -> np.ndarray:
    """One image as uint8 (C, H, W): grey stays one channel, anything else becomes RGB."""
    try:
        with Image.open(path) as im:
            a = np.asarray(im.convert("L" if im.mode in _GREY_MODES else "RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise SearchError(f"{path}: cannot read the image ({type(e).__name__}); replace or remove it") from None
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def _size(shape: tuple[int, ...]) -> str:
    c, h, w = shape
    return f"{w}x{h}" + ("" if c == 1 else f" with {c} channels")


def _same_shape(train: np.ndarray, test: np.ndarray, where: Path) -> None:
    if train.shape[1:] != test.shape[1:]:
        raise SearchError(f"{where}: test images are {_size(test.shape[1:])}, training images "
                          f"{_size(train.shape[1:])}: give both one size")


# ---------------------------------------------------------------- .npz and IDX


def _read_npz(path: Path) -> Arrays:
    raw = read_bytes(path, ".npz file", MAX_NPZ)
    try:
        npz = np.load(io.BytesIO(raw), allow_pickle=False)  # never unpickles: arrays only
        arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError) as e:
        raise SearchError(f"{path}: not a NumPy .npz of arrays ({type(e).__name__}); write it with "
                          "numpy.savez(path, x_train=..., y_train=...)") from None
    if "x_train" not in arrays or "y_train" not in arrays:
        raise SearchError(f"{path}: has {', '.join(sorted(arrays)) or 'no arrays'}; expected x_train and y_train "
                          "(and optionally x_test, y_test)")
    train_x, train_y = _images(arrays["x_train"], path, "x_train"), _labels(arrays["y_train"], path, "y_train")
    _pair(train_x, train_y, path, "x_train", "y_train")
    held: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for part in ("test", "val"):
        xk, yk = f"x_{part}", f"y_{part}"
        if (xk in arrays) != (yk in arrays):
            raise SearchError(f"{path}: has one of {xk} and {yk} without the other; give both or neither")
        if xk in arrays:
            x, y = _images(arrays[xk], path, xk), _labels(arrays[yk], path, yk)
            _pair(x, y, path, xk, yk)
            _same_shape(train_x, x, path)
            held[part] = (x, y)
    k = int(max(y.max(initial=0) for y in (train_y, *(y for _, y in held.values())))) + 1
    test_x, test_y = held.get("test", (None, None))
    val_x, val_y = held.get("val", (None, None))
    return Arrays(train_x, train_y, test_x, test_y, tuple(str(i) for i in range(k)), val_x, val_y)


def _images(a: np.ndarray, path: Path, key: str) -> np.ndarray:
    """(N, H, W), (N, H, W, C) or (N, C, H, W) unsigned bytes -> (N, C, H, W)."""
    if a.dtype != np.uint8:
        raise SearchError(f"{path}: {key} holds {a.dtype} values; expected unsigned bytes (uint8, 0..255): "
                          "convert with (x * 255).round().astype('uint8') for images in 0..1")
    if a.ndim == 3:
        return a[:, None]
    if a.ndim == 4 and a.shape[1] in (1, 3) and a.shape[3] not in (1, 3):
        return a
    if a.ndim == 4 and a.shape[3] in (1, 3):
        return np.ascontiguousarray(a.transpose(0, 3, 1, 2))
    raise SearchError(f"{path}: {key} has shape {a.shape}; expected (N, H, W), (N, H, W, C) or (N, C, H, W) "
                      "with 1 or 3 channels")


def _labels(a: np.ndarray, path: Path, key: str) -> np.ndarray:
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
        raise SearchError(f"{path}: {key} has shape {a.shape} of {a.dtype}; expected one integer label per image")
    if a.size and a.min() < 0:
        raise SearchError(f"{path}: {key} has negative labels; expected classes 0, 1, 2, ...")
    return a.astype(np.int64)


def _pair(x: np.ndarray, y: np.ndarray, path: Path, xk: str, yk: str) -> None:
    if len(x) != len(y) or not len(x):
        raise SearchError(f"{path}: {xk} has {len(x)} images and {yk} {len(y)} labels; expected one label per image")


def _read_idx(path: Path) -> Arrays:
    """An IDX quadruple of any image size and class count (MNIST's file names, .gz or not)."""
    found = {key: find_file(path, stem) for key, stem in FILES.items()}
    missing = [FILES[k] for k, f in found.items() if f is None]
    if missing:
        raise SearchError(f"{path}: lacks {missing[0]}[.gz] ({len(missing)} of 4 IDX files missing)")
    a = {key: read_idx(f) for key, f in found.items() if f is not None}
    for part in ("train", "test"):
        x, y = a[f"{part}_images"], a[f"{part}_labels"]
        if x.ndim != 3 or x.dtype != np.uint8:
            raise SearchError(f"{path}: {part} images are {x.dtype} {x.shape}; expected (N, H, W) unsigned bytes")
        _pair(x, _labels(y, path, f"{part} labels"), path, f"{part} images", f"{part} labels")
    train_x, test_x = a["train_images"][:, None], a["test_images"][:, None]
    _same_shape(train_x, test_x, path)
    k = int(max(a["train_labels"].max(), a["test_labels"].max())) + 1
    return Arrays(train_x, a["train_labels"].astype(np.int64), test_x, a["test_labels"].astype(np.int64),
                  tuple(str(i) for i in range(k)))


# ---------------------------------------------------------------- CIFAR's python batches

# All a published CIFAR batch needs: NumPy's array reconstruction (numpy.core before NumPy 2)
# and the codec Python 2 pickles use for bytes. Anything else in the file is refused, so a
# batch file cannot run code.
_CIFAR_NAMES = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _CIFAR_NAMES:
            raise pickle.UnpicklingError(f"refusing {module}.{name}")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    raw = read_bytes(path, "CIFAR batch", MAX_CIFAR)
    try:
        doc = _ArraysOnly(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:  # a damaged file, or one that asks for more than arrays
        raise SearchError(f"{path}: not a CIFAR python batch ({type(e).__name__}: {str(e)[:80]}); replace it with "
                          "the published file") from None
    if not isinstance(doc, dict):
        raise SearchError(f"{path}: not a CIFAR python batch (a {type(doc).__name__}, not a dict)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in doc.items()}


def _batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    doc = _unpickle(path)
    data, labels = doc.get("data"), doc.get(label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise SearchError(f"{path}: expected 'data' as uint8 (N, 3072) (32x32 colour images), got "
                          f"{getattr(data, 'shape', type(data).__name__)}")
    y = np.asarray(labels, dtype=np.int64) if labels is not None else None
    if y is None or y.shape != (len(data),):
        raise SearchError(f"{path}: expected {label_key!r} with one label per image")
    return data.reshape(-1, 3, 32, 32), y


def _cifar_files(path: Path) -> tuple[str, ...]:
    """CIFAR10 or CIFAR100 (the batch files the folder holds), else ()."""
    return next((files for files in (CIFAR10, CIFAR100) if all((path / f).is_file() for f in files)), ())


def _read_cifar(path: Path) -> Arrays:
    """CIFAR-10 (data_batch_1..5, test_batch, batches.meta) or CIFAR-100 (train, test, meta;
    its 100 fine labels)."""
    layout = _cifar_files(path)
    if layout == CIFAR10:
        parts = [_batch(path / f, "labels") for f in CIFAR10[:5]]
        train_x, train_y = np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])
        test_x, test_y = _batch(path / "test_batch", "labels")
        meta, key, k = path / "batches.meta", "label_names", 10
    elif layout == CIFAR100:
        (train_x, train_y), (test_x, test_y) = _batch(path / "train", "fine_labels"), _batch(path / "test", "fine_labels")
        meta, key, k = path / "meta", "fine_label_names", 100
    else:
        raise SearchError(f"{path}: expected CIFAR-10's {', '.join(CIFAR10)} or CIFAR-100's train, test and meta")
    names = _unpickle(meta).get(key) if meta.is_file() else None
    names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names) if names else tuple(
        str(i) for i in range(k))
    return Arrays(train_x, train_y, test_x, test_y, names)
