"""pytorch/examples' mnist/main.py, as most people start from it, minus torchvision (which
this machine cannot import): the same network, Adadelta (lr 1.0), StepLR (gamma 0.7),
batch 64, test batch 1,000, seed 1, and a DataLoader over a dataset that converts each
image as torchvision's MNIST + ToTensor + Normalize do (PIL image -> float / 255 ->
normalised), one image at a time. As in the example on a machine without CUDA, the
training loader does not shuffle (the example passes shuffle=True only with CUDA).

Prints one line per epoch, `epoch N test_accuracy A elapsed S`, S counted from the start
of the process, and stops after the first epoch whose test accuracy reaches --target.

    python bench/examples_mnist.py --data-dir ../shared/datasets/mnist --target 0.99
"""

from __future__ import annotations

import time

START = time.time()  # before the imports: the whole process counts

import argparse  # noqa: E402
import gzip  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch.optim as optim  # noqa: E402
from PIL import Image  # noqa: E402
from torch.optim.lr_scheduler import StepLR  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


def _idx(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise SystemExit(f"{folder}: no {stem}[.gz]")


class MNIST(Dataset):
    """torchvision.datasets.MNIST with transforms.Compose([ToTensor(), Normalize((0.1307,), (0.3081,)))])."""

    def __init__(self, folder: Path, train: bool):
        prefix = "train" if train else "t10k"
        self.data = torch.from_numpy(_idx(_find(folder, f"{prefix}-images-idx3-ubyte")).copy())
        self.targets = torch.from_numpy(_idx(_find(folder, f"{prefix}-labels-idx1-ubyte")).astype(np.int64))

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        img = Image.fromarray(self.data[i].numpy(), mode="L")
        x = torch.from_numpy(np.array(img, np.uint8)).float().div(255).unsqueeze(0)  # ToTensor
        return (x - 0.1307) / 0.3081, int(self.targets[i])  # Normalize


def train(model, loader, optimizer):
    model.train()
    for data, target in loader:
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()


def test(model, loader) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for data, target in loader:
            correct += model(data).argmax(dim=1).eq(target).sum().item()
    return correct / len(loader.dataset)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--target", type=float, default=0.99)
    ap.add_argument("--epochs", type=int, default=14)
    ap.add_argument("--train-images", type=int, default=0, help="only the first N (a smoke test; 0: all 60,000)")
    args = ap.parse_args()
    torch.manual_seed(1)
    folder = Path(args.data_dir)
    train_set = MNIST(folder, True)
    if args.train_images:
        train_set = torch.utils.data.Subset(train_set, range(args.train_images))
    train_loader = DataLoader(train_set, batch_size=64)
    test_loader = DataLoader(MNIST(folder, False), batch_size=1000)
    model = Net()
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    for epoch in range(1, args.epochs + 1):
        train(model, train_loader, optimizer)
        acc = test(model, test_loader)
        print(f"epoch {epoch} test_accuracy {acc:.4f} elapsed {time.time() - START:.2f}", flush=True)
        scheduler.step()
        if acc >= args.target:
            break


if __name__ == "__main__":
    main()
