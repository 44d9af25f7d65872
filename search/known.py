"""A dataset's name -> its four IDX files on this machine, found or downloaded and checked.

Each dataset the service knows by name is one `Known` entry: its files, mirrors, published
checksums, class names, and how its files differ from MNIST's (EMNIST stores each image
transposed and numbers its letters from 1; QMNIST's labels are int32 rows whose first
column is the class). Lookup: a folder given (`--data-dir`, SEARCH_DATA_DIR) or its
sub-folder named after the dataset, the user cache, /usr/share/datasets/NAME (Debian's
dataset packages), then a download into the user cache, every file checked before it lands.
"""

from __future__ import annotations

import hashlib
import os
import string
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from search._files import read_bytes
from search._idx import FILES, MAX_IDX, find_file, gunzip, has_all, read_idx
from search.errors import SearchError
from search.outputs import written_together

__all__ = ["KNOWN", "Archive", "Known", "download_dataset", "find_data_dir", "identify", "read_known",
           "user_cache_dir"]


@dataclass(frozen=True)
class Archive:
    """Files published inside one zip (EMNIST's gzip.zip holds every split)."""

    name: str
    md5: str
    folder: str  # the members' folder inside the zip
    size: str  # as the download message says it


@dataclass(frozen=True)
class Known:
    files: Mapping[str, str]  # train_images, train_labels, test_images, test_labels -> file name (no .gz)
    classes: tuple[str, ...]
    mirrors: tuple[str, ...]
    md5: Mapping[str, str] = field(default_factory=dict)  # of the uncompressed files, where recorded
    gz_md5: Mapping[str, str] = field(default_factory=dict)  # of the .gz files as published
    archive: Archive | None = None
    transposed: bool = False  # images stored column by column (EMNIST)
    first_label: int = 0  # the label of the first class (EMNIST letters: 1)
    mnist_norm: bool = False  # normalised with MNIST's published mean and std (as always), else the data's own
    system_dirs: tuple[Path, ...] = ()
    package: str = ""  # the Debian package that installs it


def _files(prefix: str = "", labels: str = "labels-idx1-ubyte", test: str = "t10k") -> dict[str, str]:
    return {"train_images": f"{prefix}train-images-idx3-ubyte", "train_labels": f"{prefix}train-{labels}",
            "test_images": f"{prefix}{test}-images-idx3-ubyte", "test_labels": f"{prefix}{test}-{labels}"}


def _system(name: str) -> tuple[Path, ...]:
    return (Path("/usr/share/datasets") / name,)


_DIGITS = tuple(string.digits)
_EMNIST = Archive("gzip.zip", "58c8d27c78d21e728a6bc7b3cc06412e", "gzip/", "535 MB")
_EMNIST_MIRRORS = ("https://biometrics.nist.gov/cs_links/EMNIST/",)
# EMNIST balanced: digits, capitals, and the 11 lower-case letters that do not look like their capitals
_BALANCED = _DIGITS + tuple(string.ascii_uppercase) + tuple("abdefghnqrt")

KNOWN: dict[str, Known] = {
    "mnist": Known(
        FILES, _DIGITS, ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://yann.lecun.com/exdb/mnist/"),
        md5={"train_images": "6bbc9ace898e44ae57da46a324031adb", "train_labels": "a25bea736e30d166cdddb491f175f624",
             "test_images": "2646ac647ad5339dbf082846283269ea", "test_labels": "27ae3e4e09519cfbb04c329615203637"},
        gz_md5={"train_images": "f68b3c2dcbeaaa9fbdd348bbdeb94873", "train_labels": "d53e105ee54ea40749a09fcbcd1e9432",
                "test_images": "9fb629c4189551a2d022fa330f9573f3", "test_labels": "ec29112dd5afa0611ce80d1b7f02629c"},
        mnist_norm=True, system_dirs=_system("mnist")),
    "fashion-mnist": Known(
        FILES, ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                "Ankle boot"), ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        md5={"train_images": "f4a8712d7a061bf5bd6d2ca38dc4d50a", "train_labels": "9018921c3c673c538a1fc5bad174d6f9",
             "test_images": "8181f5470baa50b63fa0f6fddb340f0a", "test_labels": "15d484375f8d13e6eb1aabb0c3f46965"},
        gz_md5={"train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
                "test_images": "bef4ecab320f06d8554ea6380940ec79", "test_labels": "bb300cfdad3c16e7a12a480ee83cd310"},
        mnist_norm=True, system_dirs=_system("fashion-mnist"), package="dataset-fashion-mnist"),
    # Kuzushiji-MNIST: ten cursive hiragana, named in romaji as the dataset's paper names them
    "kmnist": Known(
        FILES, ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
        gz_md5={"train_images": "bdb82020997e1d708af4cf47b453dcf7", "train_labels": "e144d726b3acfaa3e44228e80efcd344",
                "test_images": "5c965bf0a639b31b8f53240b1b52f4d7", "test_labels": "7320c461ea6c1c855c0b718fb2a4b134"},
        system_dirs=_system("kmnist")),
    "emnist-letters": Known(
        _files("emnist-letters-", test="test"), tuple(string.ascii_lowercase), _EMNIST_MIRRORS, archive=_EMNIST,
        transposed=True, first_label=1, system_dirs=_system("emnist-letters")),
    "emnist-balanced": Known(
        _files("emnist-balanced-", test="test"), _BALANCED, _EMNIST_MIRRORS, archive=_EMNIST, transposed=True,
        system_dirs=_system("emnist-balanced")),
    # QMNIST: MNIST's 60,000 training digits regenerated from NIST, and all 60,000 of its test digits
    "qmnist": Known(
        _files("qmnist-", labels="labels-idx2-int", test="test"), _DIGITS,
        ("https://raw.githubusercontent.com/facebookresearch/qmnist/master/",),
        gz_md5={"train_images": "ed72d4157d28c017586c42bc6afe6370", "train_labels": "0058f8dd561b90ffdd0f734c6a30e5e4",
                "test_images": "1394631089c404de565df7b7aeaf9412", "test_labels": "5b5b05890a5e13444e108efe57b788aa"},
        system_dirs=_system("qmnist")),
}


def user_cache_dir(dataset: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mnist-search" / dataset


def _digests(path: Path) -> tuple[str, str]:
    """md5 of the file as it is and of its content uncompressed."""
    raw = read_bytes(path, "IDX file", MAX_IDX)
    return hashlib.md5(raw).hexdigest(), hashlib.md5(gunzip(raw, path)).hexdigest()


def identify(directory: Path) -> str | None:
    """Which known dataset a directory holds, from its test labels' checksum (None: none
    recorded matches, or nothing to read)."""
    for name, k in KNOWN.items():
        path = find_file(directory, k.files["test_labels"])
        if path is None:
            continue
        try:
            as_is, plain = _digests(path)
        except (SearchError, OSError):
            return None
        if k.gz_md5.get("test_labels") == as_is or k.md5.get("test_labels") == plain:
            return name
    return None


def find_data_dir(dataset: str, data_dir: str | Path | None = None, download: bool = True) -> Path:
    """The directory holding the dataset's four IDX files.

    Lookup: the `data_dir` given (or its sub-folder named after the dataset, or the folder a
    published zip unpacks to), the user cache, the system dirs, then a checked download into
    the user cache. A given `data_dir` that holds another known dataset (MNIST when
    Fashion-MNIST is wanted) is passed over, so one SEARCH_DATA_DIR serves them all.
    """
    k = KNOWN[dataset]
    candidates = [user_cache_dir(dataset), *k.system_dirs]
    note = ""
    if data_dir is not None:
        d = Path(data_dir)
        if not d.is_dir():
            raise SearchError(f"data directory {d} does not exist: pass --data-dir (or SEARCH_DATA_DIR) "
                              f"pointing at the folder with the four {dataset} IDX files")
        options = [d / dataset, d] + ([d / k.archive.folder] if k.archive else [])
        for option in options:
            if option.is_dir() and has_all(option, dict(k.files)) and identify(option) in (dataset, None):
                return option
        held = identify(d)
        if held is None:
            missing = [stem for stem in k.files.values() if not find_file(d, stem)]
            raise SearchError(f"data directory {d} lacks {missing[0]}[.gz] ({len(missing)} of 4 {dataset} "
                              "IDX files missing): put the files there or point --data-dir elsewhere")
        download = False  # a directory was given: look in the usual places too, but fetch nothing
        note = f"{d} holds {held}, not {dataset}; "
    for c in candidates:
        if c.is_dir() and has_all(c, dict(k.files)):
            return c
    if download:
        return download_dataset(dataset, user_cache_dir(dataset))
    raise SearchError(f"{note}{dataset} not found in {', '.join(map(str, candidates))}: pass --data-dir DIR "
                      f"with its four IDX files" + (f" (apt-get install {k.package})" if k.package else ""))


# ---------------------------------------------------------------- downloads


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=15) as r:
        return r.read()


def _checked(k: Known, key: str, blob: bytes) -> bool:
    """Whether a downloaded .gz matches a published checksum (or ours of its content)."""
    if key in k.gz_md5 and hashlib.md5(blob).hexdigest() == k.gz_md5[key]:
        return True
    return key in k.md5 and hashlib.md5(gunzip(blob, key)).hexdigest() == k.md5[key]


def _land(path: Path, blob: bytes) -> None:
    """Never a half-written file under the real name; a full cache disk is one line."""
    with written_together([path], f"{path.name} into the user cache") as (tmp,):
        tmp.write_bytes(blob)


def _failed(dataset: str, error: str) -> SearchError:
    return SearchError(f"{dataset} is not on this machine and the download failed ({error[:80]}): "
                       f"pass --data-dir DIR (or set SEARCH_DATA_DIR) with the four IDX files")


def download_dataset(dataset: str, target: Path) -> Path:
    """Fetch the dataset's files into `target`, each one checked; fail with one line."""
    k = KNOWN[dataset]
    target.mkdir(parents=True, exist_ok=True)
    if k.archive is not None:
        if not has_all(target, dict(k.files)):
            _download_archive(dataset, k.archive)
        return target
    for key, stem in k.files.items():
        if find_file(target, stem):
            continue
        errors = []
        for mirror in k.mirrors:
            try:
                blob = _fetch(mirror + stem + ".gz")
                ok = _checked(k, key, blob)
            except Exception as e:  # any network or gzip failure means: try the next mirror
                errors.append(f"{type(e).__name__}: {e}")
                continue
            if not ok:
                errors.append(f"checksum mismatch for {stem} from {mirror}")
                continue
            _land(target / (stem + ".gz"), blob)
            break
        else:
            raise _failed(dataset, errors[-1])
    return target


def _download_archive(dataset: str, archive: Archive) -> None:
    """Fetch the zip (streamed to disk, its md5 checked), unpack the files of every known
    dataset it holds into their cache folders, and delete it."""
    k = KNOWN[dataset]
    part = user_cache_dir(archive.name + ".part")
    errors = []
    for mirror in k.mirrors:
        digest = hashlib.md5()
        try:
            with urllib.request.urlopen(mirror + archive.name, timeout=15) as r, open(part, "wb") as out:
                while chunk := r.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
        except Exception as e:  # any network or disk failure means: try the next mirror
            errors.append(f"{type(e).__name__}: {e}")
            continue
        if digest.hexdigest() != archive.md5:
            errors.append(f"checksum mismatch for {archive.name} from {mirror}")
            continue
        break
    else:
        part.unlink(missing_ok=True)
        raise _failed(dataset, errors[-1])
    try:
        with zipfile.ZipFile(part) as z:
            names = set(z.namelist())
            for other, entry in KNOWN.items():
                if entry.archive != archive:
                    continue
                target = user_cache_dir(other)
                target.mkdir(parents=True, exist_ok=True)
                for stem in entry.files.values():
                    member = archive.folder + stem + ".gz"
                    if member not in names:
                        raise SearchError(f"{archive.name} from {mirror} lacks {member}: it is not the published "
                                          f"archive; pass --data-dir DIR with the four {other} IDX files")
                    _land(target / (stem + ".gz"), z.read(member))
    except zipfile.BadZipFile as e:
        raise _failed(dataset, f"{archive.name}: {e}") from None
    finally:
        part.unlink(missing_ok=True)


# ---------------------------------------------------------------- reading


Arrays4 = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
DECODED_VERSION = 1  # raise when what read_known returns changes: older decoded copies are then not read


def read_known(dataset: str, directory: Path) -> Arrays4:
    """(train images, train labels, test images, test labels) of a known dataset: images uint8
    (N, 1, H, W) upright, labels int64 from 0, each file checked against what the dataset is.

    Decoded once, then read from an uncompressed copy in the user cache (keyed by the files'
    paths, sizes and modification times): gunzipping MNIST's 11 MB took 0.26 s of every
    process, loading the copy takes a few milliseconds (docs/benchmarks.md, cold start)."""
    k = KNOWN[dataset]
    paths = [find_file(directory, k.files[key]) or directory / k.files[key]
             for key in ("train_images", "train_labels", "test_images", "test_labels")]
    copy = _decoded_path(dataset, paths)
    arrays = _read_decoded(copy) if copy is not None else None
    if arrays is None:
        arrays = _decode(dataset, directory, paths)
        if copy is not None:
            _write_decoded(copy, arrays)
    return arrays


def _decoded_path(dataset: str, paths: list[Path]) -> Path | None:
    """Where the decoded copy of these files lives; None when a file cannot be stat'ed (its
    reading then says why)."""
    try:
        stats = [(str(p.resolve()), st.st_size, st.st_mtime_ns) for p in paths for st in [p.stat()]]
    except OSError:
        return None
    key = hashlib.sha256(repr((DECODED_VERSION, dataset, stats)).encode()).hexdigest()[:16]
    return user_cache_dir("decoded") / f"{dataset}-{key}.npz"


def _read_decoded(path: Path) -> Arrays4 | None:
    """The four arrays of a decoded copy; None when there is none or it cannot be read whole."""
    try:
        with np.load(path, allow_pickle=False) as z:
            a = z["train_x"], z["train_y"], z["test_x"], z["test_y"]
    except Exception:  # missing, truncated or not ours: decode the files again
        return None
    return a if a[0].dtype == np.uint8 and a[1].dtype == np.int64 and a[0].ndim == 4 else None


def _write_decoded(path: Path, arrays: Arrays4) -> None:
    """Best effort: a cache that cannot be written (read-only, full) only costs the next
    process its decoding again."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.savez(f, train_x=arrays[0], train_y=arrays[1], test_x=arrays[2], test_y=arrays[3])
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)


def _decode(dataset: str, directory: Path, paths: list[Path]) -> Arrays4:
    k = KNOWN[dataset]
    out = []
    for part, (image_path, label_path) in (("train", paths[:2]), ("test", paths[2:])):
        images = read_idx(image_path)
        labels = read_idx(label_path)
        if labels.ndim == 2:  # QMNIST: one row per image, its first column the class
            labels = labels[:, 0]
        if images.ndim != 3 or images.dtype != np.uint8 or labels.ndim != 1 or len(images) != len(labels):
            raise SearchError(f"{directory}: {dataset} {part} files hold {images.dtype} {images.shape} images and "
                              f"{labels.shape} labels; expected (N, H, W) bytes with N labels: replace them with "
                              "the published files")
        labels = labels.astype(np.int64) - k.first_label
        if labels.size and (labels.min() < 0 or labels.max() >= len(k.classes)):
            raise SearchError(f"{directory}: {dataset} {part} labels go from {labels.min() + k.first_label} to "
                              f"{labels.max() + k.first_label}; expected {len(k.classes)} classes from "
                              f"{k.first_label}: replace them with the published files")
        if k.transposed:
            images = images.transpose(0, 2, 1)
        out += [np.ascontiguousarray(images[:, None]), labels]
    train_x, train_y, test_x, test_y = out
    return train_x, train_y, test_x, test_y
