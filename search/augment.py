"""Batched, on-device augmentation for images of any size and channel count: random
mirroring, rotation, shift and zoom (one affine resampling), Gaussian blur and Cutout,
written with plain torch ops (torchvision is not needed). Applied to training batches only; it keeps shapes, labels
and the value range of the normalised images."""

from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F

from search.data import MNIST_NORM

__all__ = ["Augment", "AugmentConfig", "BACKGROUND"]

BACKGROUND = MNIST_NORM.background[0]  # a black pixel of MNIST after normalisation


class AugmentConfig(Protocol):
    """What the augmentation reads of a config (search.fit.TrainConfig has it all)."""

    @property
    def rotation(self) -> float: ...

    @property
    def blur_sigma(self) -> float: ...

    @property
    def shift(self) -> float: ...

    @property
    def scale(self) -> float: ...

    @property
    def hflip(self) -> bool: ...

    @property
    def cutout(self) -> float: ...


class Augment:
    """`Augment(cfg, generator)(x)`: each image is rotated by an angle drawn from
    [-rotation, rotation] degrees, moved by up to `shift` pixels on each axis, zoomed by a
    factor drawn from [1 - scale, 1 + scale], and blurred with a sigma drawn from
    [0, blur_sigma]; with `hflip`, half of them are mirrored left-right first; with `cutout`,
    a square of that fraction of the image side, centred anywhere in the image (so partly
    outside it at the edges), is set to the background last (DeVries & Taylor 2017). A zero
    (or false) turns its part off and draws no random numbers, so runs recorded before a
    part existed replay exactly."""

    def __init__(self, cfg: AugmentConfig, generator: torch.Generator | None = None,
                 background: tuple[float, ...] = (BACKGROUND,)):
        self.rotation = float(cfg.rotation)
        self.blur_sigma = float(cfg.blur_sigma)
        self.shift = float(cfg.shift)
        self.scale = float(cfg.scale)
        self.hflip = bool(cfg.hflip)
        self.cutout = float(cfg.cutout)
        self.generator = generator
        # a black pixel after normalisation, per channel: the padding of both resamplings
        self.background: float | torch.Tensor = (background[0] if len(background) == 1 else
                                                 torch.tensor(background).view(1, -1, 1, 1))

    def _uniform(self, n: int, low: float, high: float, device: torch.device) -> torch.Tensor:
        u = torch.rand(n, generator=self.generator)
        return (low + (high - low) * u).to(device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        background = self.background
        if isinstance(background, torch.Tensor):
            background = background.to(x.device, x.dtype)
        x = x - background  # so that the zero padding of both ops is the background
        n, dev = len(x), x.device
        if self.hflip:  # off draws no random numbers: runs recorded before it replay exactly
            flip = (torch.rand(n, generator=self.generator) < 0.5).to(dev)
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        degrees = self._uniform(n, -self.rotation, self.rotation, dev) if self.rotation > 0 else None
        moves = self._uniform(2 * n, -self.shift, self.shift, dev).view(n, 2) if self.shift > 0 else None
        zoom = self._uniform(n, 1 - self.scale, 1 + self.scale, dev) if self.scale > 0 else None
        if degrees is not None or moves is not None or zoom is not None:
            x = _affine(x, degrees, moves, zoom)
        if self.blur_sigma > 0:
            x = _blur(x, self._uniform(len(x), 0.0, self.blur_sigma, x.device))
        if self.cutout > 0:
            x = self._cut(x)
        return x + background

    def _cut(self, x: torch.Tensor) -> torch.Tensor:
        """Zero (the background, here) one square per image, its centre uniform over the image."""
        n, _, h, w = x.shape
        side = max(1, round(self.cutout * min(h, w)))
        cy = (torch.rand(n, generator=self.generator) * h).floor().to(x.device)[:, None]
        cx = (torch.rand(n, generator=self.generator) * w).floor().to(x.device)[:, None]
        low = side // 2  # the square covers centre - side//2 .. centre - side//2 + side - 1
        rows = torch.arange(h, device=x.device)[None, :] - cy + low
        cols = torch.arange(w, device=x.device)[None, :] - cx + low
        inside = ((rows >= 0) & (rows < side))[:, :, None] & ((cols >= 0) & (cols < side))[:, None, :]
        return x.masked_fill(inside[:, None], 0.0)


def _affine(x: torch.Tensor, degrees: torch.Tensor | None, moves: torch.Tensor | None,
            zoom: torch.Tensor | None) -> torch.Tensor:
    """Rotate, shift (pixels) and zoom every image in one bilinear resampling."""
    n, _, h, w = x.shape
    rad = degrees * (math.pi / 180) if degrees is not None else torch.zeros(n, device=x.device)
    inv = 1 / zoom if zoom is not None else torch.ones(n, device=x.device)  # the grid samples the source
    cos, sin = rad.cos() * inv, rad.sin() * inv
    # affine_grid works in [-1, 1] coordinates: one pixel is 2 / size
    tx, ty = (moves[:, 0] * (2 / w), moves[:, 1] * (2 / h)) if moves is not None else (torch.zeros_like(rad),) * 2
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1).to(x.dtype)
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
