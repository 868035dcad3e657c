"""Video backbones as clip embedders, and the embedding autoencoder of anomaly detection
(methods.md §3).

`clip_embedder(model)` removes a clip classifier's head: its last `nn.Linear` becomes the
identity, so the module maps (B, T, 3, H, W) clips to (B, D) vectors (R(2+1)D-18 512, Slow-R50
2048, SlowFast-R50 2304, X3D 2048 (its head's projection input), TSM / CNN-LSTM 512, ViViT-tiny 192).
`weights_digest(state)` names a set of weights (what an embeddings file and a detector record).

`embedding_autoencoder`: an MLP autoencoder on embeddings (BatchNorm1d on the input, hidden
widths mirrored, dropout); `infer({"embedding": x})` gives the anomaly score, the summed squared
reconstruction error of the batch-normalised input.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from actionops.errors import ActionopsError
from actionops.models.registry import register_model


def _head(model: nn.Module) -> tuple[str, nn.Linear]:
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ActionopsError(f"{type(model).__name__} has no linear head to remove", "pass a clip classifier")
    return linears[-1]


def _streams(model: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """The two networks of a two-stream classifier (models.classifiers.TwoStream), else None."""
    if hasattr(model, "appearance") and hasattr(model, "motion"):
        return model.appearance, model.motion
    return None


class _StreamsEmbedder(nn.Module):
    """Both streams' headless vectors, concatenated (appearance first)."""

    def __init__(self, appearance: nn.Module, motion: nn.Module) -> None:
        super().__init__()
        self.appearance, self.motion = appearance, motion

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.appearance(clip[:, :, :3]), self.motion(clip[:, :, 3:])], dim=1)


def embedding_dim(model: nn.Module) -> int:
    """Width of the vector a backbone gives once its head is removed (both streams' for a two-stream one)."""
    streams = _streams(model)
    if streams is not None:
        return sum(embedding_dim(m) for m in streams)
    return int(_head(model)[1].in_features)


def clip_embedder(model: nn.Module) -> nn.Module:
    """`model` with its classification head (last Linear) replaced by the identity, in eval mode
    (a two-stream model: each stream's head, the two vectors concatenated)."""
    streams = _streams(model)
    if streams is not None:
        return _StreamsEmbedder(*(clip_embedder(m) for m in streams)).eval()
    name, _ = _head(model)
    parent = model
    *path, last = name.split(".")
    for part in path:
        parent = getattr(parent, part)
    setattr(parent, last, nn.Identity())
    return model.eval()


def weights_digest(state: Mapping[str, Any]) -> str:
    """sha256 (16 hex digits) of a state dict's names, shapes and bytes, in key order."""
    digest = hashlib.sha256()
    for key in sorted(state):
        value = state[key]
        if not isinstance(value, torch.Tensor):
            continue
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:16]


class EmbeddingAutoencoder(nn.Module):
    """BatchNorm1d(dim) -> [Linear, ReLU, Dropout] x hidden -> mirror -> Linear(dim). The target is
    the batch-normalised input (standardised by the normal training data's statistics once
    trained), so every dimension weighs the same in the error."""

    def __init__(self, dim: int, hidden: Sequence[int] = (256, 128), dropout: float = 0.3) -> None:
        super().__init__()
        # no affine parameters (a learnt scale of 0 would make every input reconstruct perfectly);
        # momentum None: the running statistics are the plain mean over training batches
        self.norm = nn.BatchNorm1d(dim, affine=False, momentum=None)
        widths = [dim, *hidden]
        enc: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            enc += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
        dec: list[nn.Module] = []
        back = widths[::-1]
        for i, (a, b) in enumerate(zip(back[:-1], back[1:])):
            dec += [nn.Linear(a, b)] if i == len(back) - 2 else [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
        self.encoder, self.decoder = nn.Sequential(*enc), nn.Sequential(*dec)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction, target): the target is the normalised input."""
        target = self.norm(x)
        return self.decoder(self.encoder(target)), target

    def errors(self, x: torch.Tensor) -> torch.Tensor:
        """Per-row summed squared reconstruction error (the anomaly score)."""
        recon, target = self(x)
        return ((recon - target) ** 2).sum(dim=1)

    @torch.no_grad()
    def infer(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.errors(inputs["embedding"].float())


@register_model("embedding_autoencoder")
def embedding_autoencoder(*, dim: int, hidden: Sequence[int] = (256, 128), dropout: float = 0.3) -> nn.Module:
    """MLP autoencoder on D-dimensional embeddings (reference: 512 -> 256 -> 128 and mirror, dropout 0.3)."""
    if dim < 1 or not hidden:
        raise ActionopsError(f"embedding_autoencoder needs dim >= 1 and at least one hidden width (got {dim}, {hidden})")
    return EmbeddingAutoencoder(dim, tuple(int(h) for h in hidden), dropout)


class ClipAutoencoder(nn.Module):
    """A headless clip backbone followed by an `EmbeddingAutoencoder` (the end-to-end detector):
    `errors(clip)` is the anomaly score of clips. `backbone_state()` gives the backbone's weights
    under the names of the original classifier (its head left as it was)."""

    def __init__(self, backbone_name: str, backbone_args: Mapping[str, Any], hidden: Sequence[int], dropout: float) -> None:
        super().__init__()
        from actionops.models.registry import create_model

        backbone = create_model(backbone_name, **dict(backbone_args))
        dim = embedding_dim(backbone)
        self.backbone = clip_embedder(backbone)
        self.autoencoder = EmbeddingAutoencoder(dim, tuple(int(h) for h in hidden), dropout)

    def forward(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.autoencoder(self.backbone(clip))

    def errors(self, clip: torch.Tensor) -> torch.Tensor:
        recon, target = self(clip)
        return ((recon - target) ** 2).sum(dim=1)

    @torch.no_grad()
    def infer(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.errors(inputs["clip"].float())


@register_model("clip_autoencoder")
def clip_autoencoder(*, backbone_name: str, backbone_args: Mapping[str, Any], hidden: Sequence[int] = (256, 128),
                     dropout: float = 0.3) -> nn.Module:
    """Backbone (registry name and its arguments, head removed) + embedding autoencoder, trained end to end."""
    return ClipAutoencoder(backbone_name, backbone_args, hidden, dropout)
