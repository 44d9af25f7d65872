"""models/: each network from its ModelConfig, parameter counts planned without allocating."""

import pytest
import torch

from models import MODELS, ModelConfig, build_model, count_params, planned_params


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("batch_norm", [False, True])
def test_every_model_maps_images_to_ten_logits(name, batch_norm):
    model = build_model(ModelConfig(name, widths=(32, 32), activation="gelu", dropout=0.1, batch_norm=batch_norm))
    out = model(torch.randn(4, 1, 28, 28))
    assert out.shape == (4, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_parameter_counts_match_the_architectures():
    assert count_params(build_model(ModelConfig("lenet5"))) == 61_706  # LeCun et al. 1998, 28x28 input padded
    assert count_params(build_model(ModelConfig(widths=(100,)))) == 784 * 100 + 100 + 100 * 10 + 10
    assert count_params(build_model(ModelConfig(widths=()))) == 7850  # logistic regression
    for cfg in (ModelConfig("cnn"), ModelConfig(widths=(512, 256), batch_norm=True)):
        assert planned_params(cfg) == count_params(build_model(cfg))
    # planned on the meta device: a model far beyond this machine's memory is counted, not built
    assert planned_params(ModelConfig(widths=(65536,) * 16)) == 784 * 65536 + 15 * 65536 ** 2 + 16 * 65536 + 655370


def test_per_layer_dropouts_reach_each_layer():
    model = build_model(ModelConfig(widths=(64, 32), dropouts=(0.5, 0.1)))
    assert [m.p for m in model if isinstance(m, torch.nn.Dropout)] == [0.5, 0.1]
    model = build_model(ModelConfig(widths=(64, 32), dropout=0.2))
    assert [m.p for m in model if isinstance(m, torch.nn.Dropout)] == [0.2, 0.2]


@pytest.mark.parametrize("cfg, match", [
    (ModelConfig("resnet"), "unknown model 'resnet'"),
    (ModelConfig(activation="swishy"), "unknown activation 'swishy'"),
    (ModelConfig(widths=(64, 32), dropouts=(0.5,)), "one dropout per layer"),
])
def test_unknown_names_are_named_in_the_error(cfg, match):
    with pytest.raises(ValueError, match=match):
        build_model(cfg)
