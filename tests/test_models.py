import pytest
import torch

from models import MODELS, build_model, count_params


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("batch_norm", [False, True])
def test_every_model_maps_images_to_ten_logits(name, batch_norm):
    model = build_model(name, hidden_size=32, n_layers=2, activation="gelu", dropout=0.1, batch_norm=batch_norm)
    out = model(torch.randn(4, 1, 28, 28))
    assert out.shape == (4, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_parameter_counts_match_the_architectures():
    assert count_params(build_model("lenet5")) == 61_706  # LeCun et al. 1998, 28x28 input padded
    assert count_params(build_model("mlp", hidden_size=100, n_layers=1)) == 784 * 100 + 100 + 100 * 10 + 10
    assert count_params(build_model("mlp", n_layers=0)) == 7850  # logistic regression


@pytest.mark.parametrize("kwargs, match", [
    ({"name": "resnet"}, "unknown model 'resnet'"),
    ({"name": "mlp", "activation": "swishy"}, "unknown activation 'swishy'"),
])
def test_unknown_names_are_named_in_the_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_model(**kwargs)
