"""models/: each network from its ModelConfig, parameter counts planned without allocating."""

import pytest
import torch

from models import MODELS, Shape, build_model, count_params, planned_params
from search.params import Params


def cfg(shape=Shape(), **params):
    """The ModelConfig of these parameters (ModelConfig has no defaults of its own: Params does)."""
    return Params(**params).model_config(shape)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("batch_norm", [False, True])
def test_every_model_maps_images_to_ten_logits(name, batch_norm):
    model = build_model(cfg(model=name, widths=(32, 32), activation="gelu", dropout=0.1, batch_norm=batch_norm))
    out = model(torch.randn(4, 1, 28, 28))
    assert out.shape == (4, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", MODELS)
def test_input_shape_and_classes_come_from_the_data(name):
    """Colour 32x32 images with 26 classes: no model hard-codes MNIST's shape."""
    shape = Shape(channels=3, height=32, width=32, classes=26)
    model = build_model(cfg(shape, model=name, widths=(32,)))
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 26)
    assert MODELS[name].floats_per_image(cfg(shape, model=name)) > MODELS[name].floats_per_image(cfg(model=name))


def test_a_too_small_image_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"LeNet-5 cannot take 8x8 images \(it takes 12x12 and larger\)"):
        build_model(cfg(Shape(height=8, width=8), model="lenet5"))
    assert build_model(cfg(Shape(height=8, width=8), model="cnn"))(torch.randn(1, 1, 8, 8)).shape == (1, 10)


def test_parameter_counts_match_the_architectures():
    assert count_params(build_model(cfg(model="lenet5"))) == 61_706  # LeCun et al. 1998, 28x28 input padded
    assert count_params(build_model(cfg(widths=(100,)))) == 784 * 100 + 100 + 100 * 10 + 10
    assert count_params(build_model(cfg(n_layers=0))) == 7850  # logistic regression
    for c in (cfg(model="cnn"), cfg(widths=(512, 256), batch_norm=True)):
        assert planned_params(c) == count_params(build_model(c))
    # planned on the meta device: a model far beyond this machine's memory is counted, not built
    assert planned_params(cfg(widths=(65536,) * 16)) == 784 * 65536 + 15 * 65536 ** 2 + 16 * 65536 + 655370


def test_per_layer_dropouts_reach_each_layer():
    model = build_model(cfg(widths=(64, 32), dropouts=(0.5, 0.1)))
    assert [m.p for m in model if isinstance(m, torch.nn.Dropout)] == [0.5, 0.1]
    model = build_model(cfg(widths=(64, 32), dropout=0.2))
    assert [m.p for m in model if isinstance(m, torch.nn.Dropout)] == [0.2, 0.2]


@pytest.mark.parametrize("params, match", [
    (dict(model="resnet"), "unknown model 'resnet'"),
    (dict(activation="swishy"), "unknown activation 'swishy'"),
    (dict(widths=(64, 32), dropouts=(0.5,)), "one dropout per layer"),
])
def test_unknown_names_are_named_in_the_error(params, match):
    with pytest.raises(ValueError, match=match):
        build_model(cfg(**params))
