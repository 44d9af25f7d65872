"""Deployable models: ONNX and TorchScript files that take raw images, loaded by the README's
own snippets in a process that does not import this package, give the PyTorch model's
predictions on every validation image of real MNIST (and of the 8x8 digits, another shape)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from conftest import MNIST, ROOT, cli, needs_mnist, one_line_error, write_study

pytestmark = needs_mnist

SNIPPETS = dict(re.findall(r"<!-- loads: (\w+) -->\n```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S))


def _config(tmp_path, model: str, **params) -> tuple:
    doc = {"dataset": "mnist", "seed": 0, "train_size": 2000,
           "params": {"model": model, "epochs": 1, "batch_size": 64, "lr": 0.003, "optimizer": "adam", **params}}
    path = tmp_path / f"{model}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _torch_probs(tmp_path, config, images: np.ndarray) -> np.ndarray:
    """The retrained network's own probabilities, straight from PyTorch (the same seed gives
    the same weights: retraining on CPU is exact)."""
    from search import load_config, retrain
    from search.data import MNIST_NORM

    result = retrain(load_config(config), device="cpu", data_dir=str(MNIST))
    x = MNIST_NORM.apply(torch.from_numpy(images))
    with torch.no_grad():
        return torch.softmax(result.model.float().eval()(x), dim=1).numpy()


def _load_as_a_user(tmp_path, fmt: str, model_file, images: np.ndarray) -> tuple[np.ndarray, list]:
    """Run the README's snippet for `fmt` in a fresh interpreter from another folder."""
    where = tmp_path / f"user-{fmt}"
    where.mkdir()
    np.save(where / "images.npy", images)
    (where / ("best.onnx" if fmt == "onnx" else "best.ts")).write_bytes(model_file.read_bytes())
    code = SNIPPETS[fmt] + (
        "\nimport sys\nassert not {'search', 'models', 'cli'} & set(sys.modules), 'imported mnist-search'\n"
        "np.save('probs.npy', np.asarray(probs.detach() if hasattr(probs, 'detach') else probs))\n"
        "print(json.dumps(labels[:5] if isinstance(labels[0], str) else []))\n")
    r = subprocess.run([sys.executable, "-I", "-c", code], cwd=where, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return np.load(where / "probs.npy"), json.loads(r.stdout.splitlines()[-1])


def _val_images() -> np.ndarray:
    from search.data import load_dataset
    from search.deploy import raw_images

    return raw_images(load_dataset("mnist", MNIST, "cpu").val).numpy()


@pytest.mark.parametrize("model, params, fmt", [
    ("lenet5", {}, "onnx"),
    ("convnet", {"channels": [8, 16], "batch_norm": True}, "onnx"),
    ("mlp", {"hidden_size": 64, "n_layers": 2, "batch_norm": True, "dropout": 0.2}, "torchscript"),
    ("cnn", {}, "torchscript"),
])
def test_an_exported_model_matches_pytorch_on_every_validation_image_without_this_package(tmp_path, model, params, fmt):
    assert set(SNIPPETS) == {"onnx", "torchscript"}  # the README's loaders, run below as written
    config = _config(tmp_path, model, **params)
    out = tmp_path / ("model.onnx" if fmt == "onnx" else "model.ts")
    r = cli("train", "--config", config, "--save", out, "--json")
    assert r.exit_code == 0, r.output
    trained = json.loads(r.stdout)
    check = trained["deployed"]
    assert trained["model"] == model  # the network's name stays beside it
    assert check["format"] == fmt and check["images"] == 5000 and check["max_diff"] <= 1e-4 and check["disagree"] == 0
    images = _val_images()
    assert images.dtype == np.uint8 and images.shape == (5000, 1, 28, 28)
    probs, labels = _load_as_a_user(tmp_path, fmt, out, images)
    expected = _torch_probs(tmp_path, config, images)
    assert probs.shape == (5000, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert (probs.argmax(1) == expected.argmax(1)).all() and np.abs(probs - expected).max() < 1e-4
    assert labels == [str(i) for i in probs.argmax(1)[:5]]  # the class names from the metadata
    # raw pixels in, normalised inside the file: the validation accuracy the training measured
    assert abs((probs.argmax(1) == _val_labels()).mean() - trained["val_accuracy"]) <= 1 / 5000


def _val_labels() -> np.ndarray:
    from search.data import load_dataset

    return load_dataset("mnist", MNIST, "cpu").val.y.numpy()


def test_onnx_float_input_torchscript_both_dtypes_and_the_metadata(tmp_path):
    import onnxruntime

    config = _config(tmp_path, "lenet5")
    r = cli("train", "--config", config, "--save", tmp_path / "f.onnx", "--input", "float")
    assert r.exit_code == 0, r.output
    assert "same predictions as PyTorch on 5,000 images" in r.stdout + r.stderr
    session = onnxruntime.InferenceSession(str(tmp_path / "f.onnx"))
    (given,) = session.get_inputs()
    assert given.type == "tensor(float)" and given.shape[1:] == [1, 28, 28]
    meta = json.loads(session.get_modelmeta().custom_metadata_map["mnist_search"])
    assert meta["classes"] == [str(i) for i in range(10)] and meta["mean"] == [0.1307] and meta["std"] == [0.3081]
    assert meta["input"]["dtype"] == "float32" and meta["config"]["params"]["model"] == "lenet5"
    images = _val_images()[:500]
    floats = session.run(None, {"images": images.astype(np.float32) / 255})[0]
    assert cli("train", "--config", config, "--save", tmp_path / "m.ts").exit_code == 0
    ts = torch.jit.load(str(tmp_path / "m.ts"))
    as_bytes, as_floats = ts(torch.from_numpy(images)), ts(torch.from_numpy(images).float() / 255)
    assert torch.allclose(as_bytes, as_floats, atol=1e-6) and np.abs(floats - as_bytes.detach().numpy()).max() < 1e-4


def test_the_checkpoint_holds_what_a_loader_needs(tmp_path):
    config = _config(tmp_path, "lenet5")
    assert cli("train", "--config", config, "--save", tmp_path / "m.pt").exit_code == 0
    blob = torch.load(tmp_path / "m.pt", weights_only=True)
    assert blob["data"]["shape"] == [1, 28, 28] and blob["data"]["classes"] == [str(i) for i in range(10)]
    assert (blob["data"]["mean"], blob["data"]["std"]) == ([0.1307], [0.3081])
    assert blob["config"]["params"] == yaml.safe_load(config.read_text())["params"] | blob["config"]["params"]
    assert blob["config"]["seed"] == 0 and blob["config"]["train_size"] == 2000


def test_export_format_onnx_from_a_studys_kept_checkpoint(tmp_path):
    assert cli("run", "--study", write_study(tmp_path, keep_checkpoints=1)).exit_code == 0
    r = cli("export", "--study", "tiny", "--out", tmp_path / "best.yaml", "--format", "onnx", "--json")
    assert r.exit_code == 0, r.output
    done = json.loads(r.stdout)
    assert done["deployed"]["path"] == str(tmp_path / "best.onnx") and done["deployed"]["disagree"] == 0
    probs, _ = _load_as_a_user(tmp_path, "onnx", tmp_path / "best.onnx", _val_images())
    from search import load_weights
    from search.data import MNIST_NORM

    net = load_weights(tmp_path / "best.pt")  # the checkpoint exported beside it: the same network
    with torch.no_grad():
        expected = torch.softmax(net.eval()(MNIST_NORM.apply(torch.from_numpy(_val_images()))), 1).numpy()
    assert (probs.argmax(1) == expected.argmax(1)).all()
    # a trial whose checkpoint was not kept: one line naming the way that works, nothing written
    import optuna

    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'search.db'}")
    other = next(t.number for t in study.trials if t.number != study.best_trial.number)
    r = cli("export", "--study", "tiny", "--trial", other, "--out", tmp_path / "o.yaml", "--format", "torchscript")
    one_line_error(r, f"trial #{other} of tiny has no kept checkpoint", "search train --config", "--save o.ts")
    assert not (tmp_path / "o.yaml").exists() and not (tmp_path / "o.ts").exists()
    one_line_error(cli("export", "--study", "tiny", "--out", tmp_path / "x.yaml", "--format", "tflite"),
                   "unknown model format 'tflite'", "onnx, torchscript")


def test_an_own_shape_and_carved_test_split_export_too(tmp_path):
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (d.images * (255 / 16)).round().astype(np.uint8)[:, None]
    np.savez(tmp_path / "digits.npz", x_train=images, y_train=d.target)
    doc = {"dataset": {"path": str(tmp_path / "digits.npz")}, "seed": 0,
           "params": {"model": "mlp", "epochs": 3, "batch_size": 32, "lr": 0.003, "optimizer": "adam"}}
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(doc))
    r = cli("train", "--config", tmp_path / "d.yaml", "--save", tmp_path / "d.onnx", "--json")
    assert r.exit_code == 0, r.output
    import onnxruntime

    session = onnxruntime.InferenceSession(str(tmp_path / "d.onnx"))
    meta = json.loads(session.get_modelmeta().custom_metadata_map["mnist_search"])
    assert meta["input"]["shape"] == ["N", 1, 8, 8] and meta["mean"] != [0.1307]  # its own statistics
    probs = session.run(None, {"images": images})[0]
    assert probs.shape == (1797, 10) and (probs.argmax(1) == d.target).mean() > 0.8
