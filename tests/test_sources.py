"""The user's own images (search/sources.py) on real data: scikit-learn's 1,797 8x8 digits
as class folders of PNGs and as an .npz, and MNIST images written as IDX, .npz and PNG
folders, which must give the same trial results; bad data is one line, exit 2."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import yaml
from PIL import Image

from search.data import load_dataset, parse_dataset

from conftest import MNIST, cli, needs_mnist

sklearn = pytest.importorskip("sklearn.datasets", reason="scikit-learn (its digits) is a test dependency")


def _digits():
    d = sklearn.load_digits()
    return np.round(d.images * 255 / 16).astype(np.uint8), d.target.astype(np.int64)  # 0..16 -> 0..255


def write_folders(root, images, labels, names=None):
    for i, (x, y) in enumerate(zip(images, labels, strict=True)):
        folder = root / (names[y] if names else str(y))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x).save(folder / f"{i:05d}.png")
    return root


def study(tmp_path, dataset, name="own", **space):
    doc = {"dataset": dataset, "n_trials": 2, "seed": 0, "sampler": {"name": "random"}, "pruner": "none",
           "space": {"model": "mlp", "epochs": 2, "batch_size": 64, "lr": 3e-3, "hidden_size": 32, **space}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="module")
def digit_folders(tmp_path_factory):
    images, labels = _digits()
    return write_folders(tmp_path_factory.mktemp("digits") / "digits", images, labels)


def test_class_folders_of_8x8_pngs_read_with_their_shape_classes_and_statistics(digit_folders):
    src = parse_dataset({"path": str(digit_folders)}, "s.yaml", digit_folders.parent)
    assert src.format == "folder"
    d = load_dataset(src, None, "cpu")
    images, labels = _digits()
    assert d.shape.channels == 1 and (d.shape.height, d.shape.width, d.classes) == (8, 8, 10)
    assert d.carved and len(d.train) + len(d.val) + len(d.test) == 1797
    assert len(d.test) == round(1797 / 7) and len(d.val) == round((1797 - len(d.test)) / 12)
    # per-channel statistics of the training split, and the images normalised with them
    m, s = d.train.norm.mean[0], d.train.norm.std[0]
    assert 0.2 < m < 0.4 and 0.2 < s < 0.5 and abs(d.train.images().mean().item()) < 0.02 and abs(d.train.images().std().item() - 1) < 0.02
    assert abs(m - images.mean() / 255) < 0.01  # the training split's mean is near the whole set's
    assert sorted(np.bincount(np.concatenate([d.train.y.numpy(), d.val.y.numpy(), d.test.y.numpy()]))) == sorted(
        np.bincount(labels))


def test_a_study_on_own_images_runs_shows_exports_and_retrains_exactly(tmp_path, digit_folders):
    path = study(tmp_path, {"path": "digits"})
    (tmp_path / "digits").symlink_to(digit_folders)  # relative to the study file
    r = cli("run", "--study", path)
    assert r.exit_code == 0, r.output
    assert "data folder:" in r.output and "8x8, 10 classes;" in r.output and "(carved out, fixed seed)" in r.output
    shown = json.loads(cli("show", "--study", "own", "--json").stdout)
    assert shown["best_value"] > 0.5 and shown["dataset"]["format"] == "folder"
    listed = cli("studies").stdout
    assert "folder:" in listed and "{'path'" not in listed  # the source as people read it, not a dict
    assert cli("export", "--study", "own", "--out", tmp_path / "b.yaml").exit_code == 0
    config = yaml.safe_load((tmp_path / "b.yaml").read_text())
    assert config["dataset"] == {"path": str(digit_folders.resolve()), "format": "folder"}
    trained = json.loads(cli("train", "--config", tmp_path / "b.yaml", "--json").stdout)
    assert trained["val_accuracy"] == shown["best_value"]  # the trial, reproduced exactly on CPU
    assert trained["test_accuracy"] > 0.5
    report = cli("report", "--study", "own", "--out", tmp_path / "rep", "--evaluate")
    assert report.exit_code == 0, report.output
    md = (tmp_path / "rep" / "report.md").read_text()
    train_images = 1797 - round(1797 / 7) - round((1797 - round(1797 / 7)) / 12)
    assert f"| dataset | folder:{digit_folders.resolve()} |" in md  # as people read it, not a dict
    assert f"| training images per trial | {train_images} |" in md  # what the trials had, not the 55,000 cap


def test_npz_in_every_layout_reads_the_same(tmp_path):
    images, labels = _digits()
    x_train, y_train, x_test, y_test = images[:1500], labels[:1500], images[1500:], labels[1500:]
    layouts = {"nhw": x_train, "nhwc": x_train[..., None], "nchw": x_train[:, None]}
    read = {}
    for name, x in layouts.items():
        test = {"nhw": x_test, "nhwc": x_test[..., None], "nchw": x_test[:, None]}[name]
        np.savez(tmp_path / f"{name}.npz", x_train=x, y_train=y_train, x_test=test, y_test=y_test)
        d = load_dataset(parse_dataset({"path": f"{name}.npz"}, "s.yaml", tmp_path), None, "cpu")
        assert not d.carved and len(d.test) == 297 and d.shape.height == 8
        read[name] = d.train.pixels
    assert all(np.array_equal(read["nhw"], x) for x in read.values())


@needs_mnist
def test_the_same_mnist_images_as_idx_npz_and_png_folders_give_the_same_trials(tmp_path):
    from search._idx import read_idx

    x = read_idx(MNIST / "train-images-idx3-ubyte.gz")[:4000]
    y = read_idx(MNIST / "train-labels-idx1-ubyte.gz")[:4000]
    xt = read_idx(MNIST / "t10k-images-idx3-ubyte.gz")[:500]
    yt = read_idx(MNIST / "t10k-labels-idx1-ubyte.gz")[:500]
    idx = tmp_path / "idx"
    idx.mkdir()
    for stem, a in (("train-images-idx3-ubyte", x), ("train-labels-idx1-ubyte", y), ("t10k-images-idx3-ubyte", xt),
                    ("t10k-labels-idx1-ubyte", yt)):
        header = bytes([0, 0, 8, a.ndim]) + b"".join(n.to_bytes(4, "big") for n in a.shape)
        (idx / f"{stem}.gz").write_bytes(gzip.compress(header + a.tobytes()))
    np.savez(tmp_path / "m.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    write_folders(tmp_path / "png" / "train", x, y)
    write_folders(tmp_path / "png" / "test", xt, yt)
    values = {}
    for name, dataset in (("idx", {"path": "idx", "format": "idx"}), ("npz", {"path": "m.npz"}),
                          ("png", {"path": "png"})):
        r = cli("run", "--study", study(tmp_path, dataset, name))
        assert r.exit_code == 0, r.output
        values[name] = [t["value"] for t in json.loads(cli("show", "--study", name, "--json").stdout)["trials"]]
    assert values["idx"] == values["npz"] == values["png"] and values["idx"][0] > 0.8


@pytest.mark.parametrize("damage, message", [
    ("mixed", "image of 9x8, but"),
    ("unreadable", "cannot read the image"),
    ("empty", "class '3' has no images"),
    ("labels", "train labels go from 0 to 9, outside the 3 classes"),
    ("no_x_train", "has x, y; expected x_train and y_train"),
    ("float", "holds float64 values; expected unsigned bytes"),
    ("missing", "does not exist (paths are relative to the file's folder)"),
])
def test_bad_data_is_one_line_naming_the_file(tmp_path, damage, message):
    images, labels = _digits()
    if damage in ("mixed", "unreadable", "empty"):
        root = write_folders(tmp_path / "bad", images[:200], labels[:200])
        if damage == "mixed":
            Image.fromarray(np.zeros((8, 9), np.uint8)).save(root / "1" / "odd.png")
        elif damage == "unreadable":
            (root / "2" / "broken.png").write_bytes(b"not a png")
        else:
            for f in (root / "3").iterdir():
                f.unlink()
        dataset = {"path": "bad"}
    elif damage == "missing":
        dataset = {"path": "nowhere"}
    else:
        arrays = {"labels": dict(x_train=images, y_train=labels, x_test=images[:10], y_test=labels[:10]),
                  "no_x_train": dict(x=images, y=labels),
                  "float": dict(x_train=images / 255.0, y_train=labels)}[damage]
        np.savez(tmp_path / "bad.npz", **arrays)
        dataset = {"path": "bad.npz", **({"classes": ["a", "b", "c"]} if damage == "labels" else {})}
    r = cli("run", "--study", study(tmp_path, dataset))
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.output, lines
    assert not (tmp_path / "search.db").exists() or "own" not in cli("studies", "--json").stdout  # nothing stored


def test_a_built_in_model_too_big_for_the_images_says_the_smallest_it_takes(tmp_path, digit_folders):
    (tmp_path / "digits").symlink_to(digit_folders)
    r = cli("run", "--study", study(tmp_path, {"path": "digits"}, model="lenet5"))
    assert r.exit_code == 2, r.output
    assert r.stderr.strip().splitlines() == [f"error: {tmp_path / 'own.yaml'}: space.model: LeNet-5 cannot take 8x8 "
                                             "images (it takes 12x12 and larger): choose the mlp or cnn model, or "
                                             "larger images"]
    r = cli("run", "--study", study(tmp_path, {"path": "digits"}, model="cnn", name="cnn"))
    assert r.exit_code == 0, r.output  # the CNN pools globally: any size


def _cifar(folder, kind, n=12, seed=0):
    """CIFAR's python batches in their published layout (dicts with bytes keys, pickle protocol 2)."""
    import pickle

    rng = np.random.default_rng(seed)
    folder.mkdir()

    def batch(name, label_key, k):
        doc = {b"batch_label": name.encode(), label_key: [int(v) for v in np.arange(n) % k],
               b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}
        (folder / name).write_bytes(pickle.dumps(doc, protocol=2))

    if kind == 10:
        for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
            batch(name, b"labels", 10)
        names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
        (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names, b"num_vis": 3072}, protocol=2))
    else:
        batch("train", b"fine_labels", 100)
        batch("test", b"fine_labels", 100)
        meta = {b"fine_label_names": [f"class{i}".encode() for i in range(100)], b"coarse_label_names": []}
        (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def test_cifar_python_batches_read_as_colour_images_with_their_names(tmp_path):
    ten = load_dataset(parse_dataset({"path": str(_cifar(tmp_path / "cifar-10-batches-py", 10))}, "s", tmp_path),
                       None, "cpu")
    assert (ten.shape.channels, ten.shape.height, ten.shape.width, ten.classes) == (3, 32, 32, 10)
    assert ten.class_names[0] == "airplane" and len(ten.train) + len(ten.val) == 60 and len(ten.test) == 12
    assert len(ten.train.norm.mean) == 3 and not ten.carved
    hundred = load_dataset(parse_dataset({"path": str(_cifar(tmp_path / "cifar-100-python", 100, n=200))}, "s",
                                         tmp_path), None, "cpu")
    assert hundred.classes == 100 and hundred.class_names[99] == "class99"


def test_a_cifar_batch_that_asks_for_more_than_arrays_is_refused(tmp_path):
    import pickle

    folder = _cifar(tmp_path / "cifar", 10)

    class Evil:
        def __reduce__(self):
            return (print, ("ran code",))

    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    r = cli("run", "--study", study(tmp_path, {"path": "cifar"}))
    assert r.exit_code == 2 and "ran code" not in r.output
    assert r.stderr.strip().splitlines() == [f"error: {folder / 'data_batch_3'}: not a CIFAR python batch "
                                             "(UnpicklingError: refusing __builtin__.print); replace it with the "
                                             "published file"]


def test_a_colour_study_with_hflip_runs_on_cifar_style_batches(tmp_path):
    _cifar(tmp_path / "cifar", 10, n=64)
    r = cli("run", "--study", study(tmp_path, {"path": "cifar"}, model="cnn", augment=True, hflip=True, shift=2.0,
                                    rotation=5.0))
    assert r.exit_code == 0, r.output
    assert "32x32x3, 10 classes" in r.output
    shown = json.loads(cli("show", "--study", "own", "--json").stdout)
    assert [t["state"] for t in shown["trials"]] == ["COMPLETE", "COMPLETE"]


def test_a_given_validation_part_is_used_as_is(tmp_path):
    """ImageNet's layout (train/ and val/, no test/) and an .npz with x_val: their own
    validation images, in full; the test part is carved from train/ when none is given."""
    images, labels = _digits()
    train, val = slice(0, 1500), slice(1500, None)
    root = tmp_path / "digits"
    write_folders(root / "train", images[train], labels[train])
    write_folders(root / "val", images[val], labels[val])
    folders = load_dataset(parse_dataset({"path": "digits"}, "s.yaml", tmp_path), None, "cpu")
    assert len(folders.val) == 297 and folders.val_given and folders.carved
    assert len(folders.train) + len(folders.test) == 1500 and folders.facts()["val"] == "given"
    assert "(val given)" in folders.describe()
    # the validation images are exactly val/'s, in file-name order
    expect = (images[val].astype(np.float32) / 255 - folders.val.norm.mean[0]) / folders.val.norm.std[0]
    assert np.allclose(folders.val.images()[:, 0].numpy(), expect, atol=1e-6)
    np.savez(tmp_path / "digits.npz", x_train=images[:1200], y_train=labels[:1200], x_val=images[1200:1500],
             y_val=labels[1200:1500], x_test=images[1500:], y_test=labels[1500:])
    npz = load_dataset(parse_dataset({"path": "digits.npz"}, "s.yaml", tmp_path), None, "cpu")
    assert (len(npz.train), len(npz.val), len(npz.test)) == (1200, 300, 297) and not npz.carved
    assert (npz.val.y.numpy() == labels[1200:1500]).all()
    # data without a validation part of its own stores the same facts as before
    plain = load_dataset(parse_dataset({"path": "digits/train"}, "s.yaml", tmp_path), None, "cpu")
    assert not plain.val_given and "val" not in plain.facts() and len(plain.val) == round(1286 / 12)
