"""Write scikit-learn's 1,797 real 8x8 digits as a class-folder tree of PNGs:
    python make_digits.py digits      # digits/0/00000.png, digits/1/00001.png, ..."""

import sys
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def main(out: Path) -> None:
    d = load_digits()
    images = np.round(d.images * 255 / 16).astype(np.uint8)  # pixel values 0..16 -> 0..255
    for i, (x, y) in enumerate(zip(images, d.target, strict=True)):
        folder = out / str(y)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x).save(folder / f"{i:05d}.png")
    print(f"wrote {len(images)} images in {len(set(d.target))} class folders under {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "digits"))
