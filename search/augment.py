"""Batched, on-device augmentation for 28x28 grey images: random rotation and Gaussian
blur, written with plain torch ops (torchvision is not needed). Applied to training
batches only; it keeps shapes, labels and the value range of the normalised images."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from search.data import MEAN, STD

BACKGROUND = (0.0 - MEAN) / STD  # a black pixel after normalisation


class Augment:
    """`Augment(rotation=10, blur_sigma=1.0)(x)`: each image is rotated by an angle drawn
    from [-rotation, rotation] degrees and blurred with a sigma drawn from [0, blur_sigma]."""

    def __init__(self, rotation: float = 10.0, blur_sigma: float = 1.0, generator: torch.Generator | None = None):
        self.rotation = float(rotation)
        self.blur_sigma = float(blur_sigma)
        self.generator = generator

    def _uniform(self, n: int, low: float, high: float, device: torch.device) -> torch.Tensor:
        u = torch.rand(n, generator=self.generator)
        return (low + (high - low) * u).to(device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x - BACKGROUND  # so that the zero padding of both ops is the background
        if self.rotation > 0:
            x = _rotate(x, self._uniform(len(x), -self.rotation, self.rotation, x.device))
        if self.blur_sigma > 0:
            x = _blur(x, self._uniform(len(x), 0.0, self.blur_sigma, x.device))
        return x + BACKGROUND


def _rotate(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    rad = degrees * (math.pi / 180)
    cos, sin, zero = rad.cos(), rad.sin(), torch.zeros_like(rad)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _blur(x: torch.Tensor, sigma: torch.Tensor, radius: int = 3) -> torch.Tensor:
    """Separable Gaussian blur with one sigma per image, as one grouped convolution."""
    n, c, h, w = x.shape
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    s = sigma.clamp_min(1e-3).to(x.dtype)[:, None]
    k = torch.exp(-0.5 * (offsets[None, :] / s) ** 2)
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (n*c, 2r+1)
    flat = x.reshape(1, n * c, h, w)
    flat = F.conv2d(flat, k[:, None, :, None], padding=(radius, 0), groups=n * c)
    flat = F.conv2d(flat, k[:, None, None, :], padding=(0, radius), groups=n * c)
    return flat.reshape(n, c, h, w)
