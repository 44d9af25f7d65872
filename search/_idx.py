"""IDX files (MNIST's format, gzip-compressed or not) -> numpy arrays of their own shape."""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np

from search._files import read_bytes
from search.errors import SearchError

MAX_IDX = 1 << 30  # the largest IDX file read (MNIST's training images: 47 MB)
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def gunzip(raw: bytes, path: Path | str, limit: int = MAX_IDX) -> bytes:
    """`raw` uncompressed when it is gzip, stopping at `limit` bytes: a small file that would
    expand to gigabytes is refused after reading `limit`, not after filling the memory."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    out: list[bytes] = []
    rest = raw
    try:
        while rest:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out.append(d.decompress(rest, limit + 1 - sum(map(len, out))))
            if sum(map(len, out)) > limit or d.unconsumed_tail:
                raise SearchError(f"{path}: expands past {limit:,} bytes uncompressed (at most {limit:,}); "
                                  "replace it with a good copy")
            if not d.eof:
                raise SearchError(f"{path}: cannot read IDX file (the gzip data ends early); replace it with a "
                                  "good copy")
            rest = d.unused_data  # a file of several gzip members
    except zlib.error as e:
        raise SearchError(f"{path}: cannot read IDX file ({e}); replace it with a good copy") from None
    return b"".join(out)


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (gzip-compressed or not) into a numpy array of its own shape."""
    raw = read_bytes(path, "IDX file", MAX_IDX, "replace it with a good copy")
    return parse_idx(gunzip(raw, path), path)


# IDX's element types (the third magic byte), big-endian as the format stores them
DTYPES: dict[int, np.dtype] = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def parse_idx(raw: bytes, path: Path | str = "<bytes>") -> np.ndarray:
    """IDX bytes -> an array of their shape and type (native byte order): MNIST's unsigned
    bytes, QMNIST's int32 label rows, any of the format's six types."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in DTYPES:
        raise SearchError(f"{path}: not an IDX file (bad magic {raw[:4].hex() or 'empty'}); "
                          "replace it with a good copy")
    dtype, ndim = DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise SearchError(f"{path}: corrupt IDX header ({ndim} dimensions); replace it with a good copy")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(shape) * dtype.itemsize  # exact: Python integers do not overflow
    if len(raw) != expected:
        raise SearchError(f"{path}: corrupt IDX file: header says {shape} = {expected} bytes, file has {len(raw)}; "
                          "replace it with a good copy")
    a = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return a if dtype.itemsize == 1 else a.astype(dtype.newbyteorder("="))


def find_file(directory: Path, stem: str) -> Path | None:
    """`stem` or `stem.gz` in the directory."""
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def has_all(directory: Path, files: dict[str, str] = FILES) -> bool:
    return all(find_file(directory, stem) for stem in files.values())
