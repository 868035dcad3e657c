"""3D-conv autoencoder for windows of RGB frames or optical flow (individual clustering, method 1).

    x (B, C, T, H, W) in [-1, 1]
      stem   Conv3d k(3,5,5) s(1,2,2) + BN + LeakyReLU(0.1)      C  -> c      H/2
      down1  Conv3d k3 s(2,2,2)       + BN + LeakyReLU(0.1)      c  -> 2c     T/2, H/4
      down2  Conv3d k3 s1             + BN + LeakyReLU(0.1)      2c -> 4c     H/4
      latent Conv3d k1                                           4c -> L      (B, L, T/2, H/4, W/4)
      decoder mirrors it with ConvTranspose3d + BN + LeakyReLU(0.1), then Tanh, resized to x
The reference's I3D trunk has stride 8 at 640x360; our inputs are ~6x smaller, so stride 4
keeps a person several latent cells wide. Boxes in input pixels map onto the latent with
RoIAlign spatial_scale 1/SPATIAL_STRIDE, applied once. Small by design: it trains on CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from actionops.models.registry import register_model

SPATIAL_STRIDE = 4
# Weights and inputs channels-last: oneDNN's conv3d runs about a quarter faster on CPU in NDHWC
# than in NCDHW (benchmarks/results/ae_memory_format.json); the values are the same, only the
# order of summation differs (cuDNN supports the layout too).
MEMORY_FORMAT = torch.channels_last_3d


def _block(cin: int, cout: int, kernel, stride, padding, transpose: bool = False) -> nn.Sequential:
    conv = (nn.ConvTranspose3d if transpose else nn.Conv3d)(cin, cout, kernel, stride, padding, bias=False)
    return nn.Sequential(conv, nn.BatchNorm3d(cout), nn.LeakyReLU(0.1, inplace=True))


class Conv3dAutoencoder(nn.Module):
    """forward(x) -> (reconstruction like x, latent (B, L, T/2, H/8, W/8))."""

    def __init__(self, in_channels: int, base_channels: int, latent_channels: int) -> None:
        super().__init__()
        c = base_channels
        self.encoder = nn.Sequential(
            _block(in_channels, c, (3, 5, 5), (1, 2, 2), (1, 2, 2)),
            _block(c, 2 * c, 3, (2, 2, 2), 1),
            _block(2 * c, 4 * c, 3, 1, 1),
            nn.Conv3d(4 * c, latent_channels, 1),
        )
        self.decoder = nn.Sequential(
            _block(latent_channels, 4 * c, 1, 1, 0, transpose=True),
            _block(4 * c, 2 * c, 3, 1, 1, transpose=True),
            _block(2 * c, c, (4, 4, 4), (2, 2, 2), (1, 1, 1), transpose=True),
            nn.ConvTranspose3d(c, in_channels, (3, 4, 4), (1, 2, 2), (1, 1, 1)),
            nn.Tanh(),
        )
        self.to(memory_format=MEMORY_FORMAT)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.contiguous(memory_format=MEMORY_FORMAT))

    def decode(self, latent: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
        out = self.decoder(latent)
        if tuple(out.shape[2:]) != tuple(size):
            out = F.interpolate(out, size=size, mode="trilinear", align_corners=False)
        return out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        latent = self.encode(x)
        return self.decode(latent, tuple(x.shape[2:])), latent


@register_model("conv3d_autoencoder")
def conv3d_autoencoder(*, in_channels: int = 3, base_channels: int = 16, latent_channels: int = 64) -> Conv3dAutoencoder:
    """3D-conv autoencoder; input (B, C, T, H, W) in [-1, 1]; latent stride (2, 4, 4)."""
    return Conv3dAutoencoder(in_channels, base_channels, latent_channels)
