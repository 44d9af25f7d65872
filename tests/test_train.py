"""The fit loop and augmentation on real MNIST."""

import math

import pytest
import torch

from models import Shape
from search.augment import BACKGROUND, Augment
from search.data import load_dataset
from search.experiment import build, subset
from search.fit import evaluate, fit
from search.params import Params

from conftest import MNIST, needs_mnist

pytestmark = needs_mnist
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data():
    return load_dataset("mnist", MNIST, "cpu")


def params(**overrides):
    return Params.from_dict(overrides, "test")


def augment(seed=None, **axes):
    """The augmentation a config with these axes trains with (its generator seeded with `seed`)."""
    return Augment(params(augment=True, **axes), None if seed is None else torch.Generator().manual_seed(seed))


class Counting:
    """A transform that counts the batches it sees and passes them through."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return x


def test_augmentation_keeps_shape_range_and_changes_pixels(data):
    x = data.train.images(slice(0, 256))
    out = augment(0, rotation=15, blur_sigma=1.5)(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= BACKGROUND - 1e-4 and out.max() <= x.max() + 1e-4
    assert (out - x).abs().mean() > 0.05  # it really moved pixels
    # corners stay background: rotation pads with black, not with zeros of the normalised scale
    assert torch.allclose(out[:, :, 0, 0], torch.full_like(out[:, :, 0, 0], BACKGROUND), atol=1e-4)
    same = augment(rotation=0, blur_sigma=0)(x)
    assert torch.allclose(same, x, atol=1e-6)


def _centre(x):
    """Centre of mass (row, column) of each image's ink, in pixels."""
    ink = (x - BACKGROUND).clamp_min(0)[:, 0]
    rows = torch.arange(28, dtype=x.dtype)
    total = ink.sum((1, 2))
    return (ink.sum(2) * rows).sum(1) / total, (ink.sum(1) * rows).sum(1) / total


def test_shift_moves_ink_by_up_to_shift_pixels_and_zoom_changes_its_extent(data):
    x = data.train.images(slice(0, 512))
    r0, c0 = _centre(x)
    out = augment(0, rotation=0, blur_sigma=0, shift=3)(x)
    r1, c1 = _centre(out)
    moved = torch.maximum((r1 - r0).abs(), (c1 - c0).abs())
    assert moved.max() <= 3.2 and moved.mean() > 1.0  # up to 3 pixels per axis, on average well above 0
    big = augment(0, rotation=0, blur_sigma=0, scale=0.3)(x)
    ink = lambda t: (t > BACKGROUND + 0.5).sum((1, 2, 3)).float()  # noqa: E731
    ratio = ink(big) / ink(x)
    assert ratio.min() < 0.8 and ratio.max() > 1.2  # zoomed out and in
    # shift=0 and scale=0 draw no random numbers: rotation+blur runs replay as recorded before
    assert torch.equal(augment(5, rotation=10, blur_sigma=1.0)(x), augment(5, rotation=10, shift=0, scale=0)(x))
    assert not torch.equal(augment(5)(x), augment(5, shift=1)(x))


def test_augmentation_is_applied_to_training_batches_only(data):
    p = params(epochs=2, batch_size=500, hidden_size=32)
    model = build(p, 0, CPU, Shape())
    counting = Counting()
    train = subset(data.train, 3000)
    fitted = fit(model, train, data.val, p, 0, transform=counting)
    assert counting.calls == 2 * 6  # 6 steps per epoch, none during the two evaluations
    history = fitted.history
    assert len(history) == 2 and history[-1].val_accuracy == evaluate(model, data.val, fitted.precision)[1]


def test_augmented_training_still_learns(data):
    p = params(epochs=1, batch_size=64, hidden_size=64, augment=True, rotation=10, blur_sigma=1.0)
    assert isinstance(p.transform(0), Augment) and params().transform(0) is None
    history = fit(build(p, 0, CPU, Shape()), subset(data.train, 5000), data.val, p, 0).history  # its own augmentation
    plain = fit(build(p, 0, CPU, Shape()), subset(data.train, 5000), data.val,
                params(epochs=1, batch_size=64, hidden_size=64), 0).history
    assert history[-1].val_accuracy > 0.8
    assert history[-1].train_loss != plain[-1].train_loss  # the augmented batches differ


def test_iteration_budget_stops_after_exactly_that_many_steps(data):
    p = params(iterations=7, batch_size=64, hidden_size=32, epochs=50)
    counting = Counting()
    history = fit(build(p, 0, CPU, Shape()), subset(data.train, 200), data.val, p, 0,
                  transform=counting).history
    assert counting.calls == 7
    assert len(history) == math.ceil(7 / math.ceil(200 / 64))  # two epochs of 4 steps, the second partial


def test_summed_and_mean_training_loss(data):
    p = params(epochs=1, batch_size=100, hidden_size=32)
    r = fit(build(p, 0, CPU, Shape()), subset(data.train, 1000), None, p, 0).history[0]
    assert r.train_loss_sum == pytest.approx(r.train_loss * 10, rel=1e-4)  # 10 equal batches
    assert math.isnan(r.val_accuracy)


@pytest.mark.parametrize("widths", ["512-256", [512, 256]])
def test_widths_build_the_described_mlp(widths):
    p = params(widths=widths, dropouts=[0.3, 0.1])
    model = build(p, 0, CPU, Shape())
    assert [m.out_features for m in model if isinstance(m, torch.nn.Linear)] == [512, 256, 10]
    assert [m.p for m in model if isinstance(m, torch.nn.Dropout)] == [0.3, 0.1]
    assert p.active()["widths"] == [512, 256] and "hidden_size" not in p.active()


def _lrs(data, monkeypatch, **overrides):
    """The learning rate of every training step of a short real run (seen by Adam.step)."""
    p = params(epochs=2, batch_size=500, hidden_size=32, lr=0.01, **overrides)
    seen = []
    real_step = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    history = fit(build(p, 0, CPU, Shape()), subset(data.train, 3000), data.val, p, 0).history
    monkeypatch.undo()
    return seen, history


def test_schedules_shape_the_learning_rate_over_the_run(data, monkeypatch):
    constant, _ = _lrs(data, monkeypatch)
    assert constant == [0.01] * 12
    onecycle, history = _lrs(data, monkeypatch, schedule="onecycle")
    peak = onecycle.index(max(onecycle))
    assert len(onecycle) == 12 and onecycle[0] < 0.001 and max(onecycle) == pytest.approx(0.01, rel=0.05)
    assert 2 <= peak <= 5 and onecycle[-1] < 0.001  # up for ~30 % of the steps, then down
    assert history[-1].val_accuracy > 0.7  # it learns (12 steps)
    cosine, _ = _lrs(data, monkeypatch, schedule="cosine", warmup_epochs=1)
    assert cosine[:6] == sorted(cosine[:6]) and cosine[5] == pytest.approx(0.01)  # one epoch of warm-up
    assert cosine[6:] == sorted(cosine[6:], reverse=True) and cosine[-1] < 0.001
    warm, _ = _lrs(data, monkeypatch, schedule="onecycle", warmup_epochs=1)
    assert warm.index(max(warm)) == 5  # the peak at the last step of the warm-up epoch


def test_label_smoothing_changes_the_training_loss_only(data):
    plain_p = params(epochs=1, hidden_size=32, lr=3e-3)
    plain = fit(build(plain_p, 0, CPU, Shape()), subset(data.train, 5000), data.val,
                plain_p, 0).history[0]
    smooth_p = params(epochs=1, hidden_size=32, lr=3e-3, label_smoothing=0.2)
    smooth = fit(build(smooth_p, 0, CPU, Shape()), subset(data.train, 5000), data.val,
                 smooth_p, 0).history[0]
    assert smooth.train_loss > plain.train_loss + 0.1  # a smoothed target can never be met exactly
    assert smooth.val_accuracy > 0.8 and abs(smooth.val_accuracy - plain.val_accuracy) < 0.05


def test_the_fast_path_is_measured_and_keeps_accuracy(data):
    from search import precision

    x, y = data.train.images(slice(0, 128)), data.train.y[:128]
    mlp = build(params(), 0, CPU, Shape())
    assert precision.choose(mlp, x, y) == precision.FP32  # no convolution, nothing to gain
    cnn = build(params(model="cnn"), 0, CPU, Shape())
    before = [p.clone() for p in cnn.parameters()]
    rng = torch.get_rng_state()
    chosen = precision.choose(cnn, x, y)
    assert all(torch.equal(a, b) for a, b in zip(before, cnn.parameters(), strict=True))  # timed on a copy
    assert torch.equal(rng, torch.get_rng_state())
    if chosen.bf16:
        assert precision.cpu_has_bf16()  # bf16 only where the CPU has bf16 instructions
    # a short real training: fp32 against the fastest path this CPU offers
    fast = precision.Precision(channels_last=True, bf16=precision.cpu_has_bf16())
    p = params(model="lenet5", epochs=1, batch_size=64, lr=3e-3)
    results = {}
    for mode in (precision.FP32, fast):
        model = build(p, 0, CPU, Shape())
        with precision.forced(mode):
            fitted = fit(model, subset(data.train, 3000), data.val, p, 0)
        results[mode] = fitted.history[-1]
        assert fitted.precision == mode
    assert results[fast].val_accuracy > 0.8
    assert abs(results[fast].val_accuracy - results[precision.FP32].val_accuracy) < 0.03


def test_a_retrain_uses_the_numerics_its_trial_trained_with(tmp_path):
    """The fast path is chosen by timing, which can differ between two runs (a busy machine):
    the trial records its choice, export writes it, and `search train` reuses it, so the
    retrain reproduces the trial's validation accuracy."""
    import json

    import optuna
    import yaml

    from conftest import cli, write_study

    path = write_study(tmp_path, "conv", n_trials=1, train_size=1000,
                       space={"model": "convnet", "channels": "8-16", "hidden_size": 32, "iterations": 20})
    assert cli("run", "--study", path).exit_code == 0
    (trial,) = optuna.load_study(study_name="conv", storage=f"sqlite:///{tmp_path}/search.db").trials
    chosen = trial.user_attrs["precision"]
    assert chosen in ("fp32", "channels_last", "bf16", "channels_last+bf16")
    assert cli("export", "--study", "conv", "--out", "c.yaml").exit_code == 0
    config = yaml.safe_load((tmp_path / "c.yaml").read_text())
    assert config["precision"] == chosen
    other = "channels_last" if chosen == "fp32" else "fp32"
    for precision in (chosen, other):
        config["precision"] = precision
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
        s = json.loads(cli("train", "--config", "c.yaml", "--json").stdout)
        assert s["precision"] == precision  # what the config says, not a new measurement
        if precision == chosen:
            assert s["val_accuracy"] == trial.user_attrs["val_accuracy"][-1]  # reproduced exactly
    config["precision"] = "fp16"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    r = cli("train", "--config", "c.yaml")
    assert r.exit_code == 2 and "precision: unknown value 'fp16'" in r.stderr


def test_a_config_recorded_with_bf16_trains_without_it_on_a_cpu_that_has_no_bf16(tmp_path, monkeypatch):
    """bf16 numerics chosen on a CPU with bf16 instructions run emulated, 10x slower, on one
    without (fast-99: 85.8 s of training against 8.5 s): the retrain keeps the rest of the
    recorded numerics and says in one warning line that it dropped bf16."""
    import json

    import yaml

    from search import trained

    from conftest import cli

    monkeypatch.setattr(trained, "cpu_has_bf16", lambda: False)  # the CPU flags as on such a machine
    config = {"dataset": "mnist", "seed": 0, "train_size": 1000, "precision": "channels_last+bf16",
              "params": {"model": "convnet", "channels": [8, 16], "hidden_size": 32, "iterations": 20}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    r = cli("train", "--config", "c.yaml", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["precision"] == "channels_last"
    (line,) = [x for x in r.stderr.splitlines() if x.startswith("warning:")]
    assert "channels_last+bf16" in line and "no bf16 instructions" in line and "channels_last instead" in line
    config["precision"] = "fp32"  # nothing to drop: no warning
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    r = cli("train", "--config", "c.yaml", "--json")
    assert r.exit_code == 0 and "warning" not in r.stderr and json.loads(r.stdout)["precision"] == "fp32"


def test_cutout_erases_one_square_per_image_to_the_background(data):
    x = data.train.images(slice(0, 300))
    out = augment(5, rotation=0, blur_sigma=0, cutout=0.25)(x)  # a 7-pixel square of a 28-pixel side
    background = data.train.norm.background[0]
    changed = ((out - x).abs() > 1e-5).flatten(1)  # x - background + background rounds: not bit for bit
    erased = ((out - background).abs() < 1e-5).flatten(1) & ((x - background).abs() > 1e-5).flatten(1)
    assert torch.equal(changed, erased)  # what changed became black, nothing else moved
    assert (changed.sum(1) <= 49).all()  # at most the square; less where it overlaps the edge or black
    assert changed.any(1).float().mean() > 0.5  # most images lose ink (a square on the background changes nothing)
    assert torch.equal(augment(5, rotation=0, blur_sigma=0, cutout=0.25)(x), out)  # seeded: the same squares
    assert "cutout" not in params().active() and params(augment=True).active()["cutout"] == 0.0


def test_hflip_mirrors_about_half_the_images_of_any_channel_count(data):
    x = data.train.images(slice(0, 400))
    out = augment(3, rotation=0, blur_sigma=0, hflip=True)(x)
    mirrored = [torch.allclose(o, i.flip(2), atol=1e-5) for o, i in zip(out, x, strict=True)]
    kept = [torch.allclose(o, i, atol=1e-5) for o, i in zip(out, x, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True)) and 150 < sum(mirrored) < 250
    colour = torch.randn(64, 3, 32, 32)
    flipped = Augment(params(augment=True, rotation=0, blur_sigma=0, hflip=True), torch.Generator().manual_seed(0),
                      background=(0.0, 0.0, 0.0))(colour)
    assert flipped.shape == colour.shape and not torch.equal(flipped, colour)
    assert params(augment=True).active()["hflip"] is False and "hflip" not in params().active()  # off by default


_EAGER_PROBE = """
import hashlib, sys
{first}
import torch
from models import Shape
from search.data import load_dataset
from search.experiment import build, subset
from search.fit import fit
from search.params import Params
data = load_dataset("mnist", sys.argv[1], "cpu")
for optimizer, schedule in (("sgd", "onecycle"), ("adam", "cosine"), ("adamw", "onecycle"), ("rmsprop", "constant")):
    p = Params.from_dict({{"model": "convnet", "optimizer": optimizer, "schedule": schedule, "lr": 1e-3,
                          "momentum": 0.9, "weight_decay": 1e-4, "batch_size": 64, "iterations": 12}}, "probe")
    model = build(p, 0, torch.device("cpu"), Shape())
    fit(model, subset(data.train, 768), None, p, 0)  # in place
    digest = hashlib.sha256(b"".join(t.detach().contiguous().numpy().tobytes() for t in model.state_dict().values()))
    print(optimizer, digest.hexdigest())
print("dynamo", "torch._dynamo" in sys.modules)
"""


def test_training_keeps_torch_dynamo_out_and_updates_weights_as_torch_optim_does():
    """search._torch.eager: the fit loop's four optimizers (with their schedules) train
    without importing torch._dynamo (1.65 s of a cold `search train`), and their weights
    are bit for bit those of torch.optim's own path, which a process that imported
    torch._dynamo first takes. Fresh processes: this one may have imported it already."""
    import subprocess
    import sys

    def run(first: str) -> list[str]:
        r = subprocess.run([sys.executable, "-c", _EAGER_PROBE.format(first=first), str(MNIST)],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        return r.stdout.split("\n")

    ours, torchs = run(""), run("import torch._dynamo")
    assert ours[-2:] == ["dynamo False", ""] and torchs[-2:] == ["dynamo True", ""]
    assert ours[:4] == torchs[:4] and len(set(ours[:4])) == 4  # four optimizers, four different results
