"""The self-supervised video backbone of methods.md §5 (`actionops train pretrain`).

`video_pretrained`: a clip classifier's network without its classifier (`backbone`, e.g. r3d_18:
torchvision's 3D ResNet-18) and a linear projection to `dim` (the memory bank's space). Input
(B, T, 3, H, W) normalised frames (or frame differences); `forward` gives L2-normalised (B, dim)
embeddings, `features` the backbone's pooled (B, 512) vector (what evaluate's k-NN / linear
probe read) and `infer({"clip": x})` the embeddings (the MLflow pyfunc path).

Its state dict names the backbone's tensors as the classifier of the same name does (`net.*`),
so `--weights models:/video-pretrained@ALIAS` loads into `classifier.model=r3d_18` with only the
new head left out (`models.classifiers.load_weights`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from actionops.errors import ActionopsError
from actionops.models.registry import register_model

BACKBONES = ("r3d_18",)


class VideoPretrained(nn.Module):
    def __init__(self, backbone: str, dim: int) -> None:
        super().__init__()
        from actionops.models.registry import create_model

        if backbone not in BACKBONES:
            raise ActionopsError(f"video_pretrained: no backbone {backbone!r}", f"choose one of {', '.join(BACKBONES)}")
        classifier = create_model(backbone, num_classes=1)
        self.net = classifier.net
        width = self.net.fc.in_features
        self.net.fc = nn.Identity()
        self.head = nn.Linear(width, dim)
        self.width = width

    def features(self, clip: torch.Tensor) -> torch.Tensor:
        return self.net(clip.transpose(1, 2))  # (B, 3, T, H, W) -> (B, width)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.head(self.features(clip)), dim=1)

    @torch.no_grad()
    def infer(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self(inputs["clip"].float())


@register_model("video_pretrained")
def video_pretrained(*, backbone: str = "r3d_18", dim: int = 128, num_frames: int = 16, image_size: int = 112,
                     clip_input: str = "rgb") -> VideoPretrained:
    """A `backbone` clip network with a `dim` projection, trained by `train pretrain`. num_frames,
    image_size and clip_input record the input it was trained on (the backbone pools adaptively;
    consumers compare them: `check_consumer`)."""
    return VideoPretrained(backbone, dim)


def check_consumer(state: Mapping[str, Any], source: str, *, model: str, num_frames: int, size: int,
                   clip_input: str, keys: Mapping[str, str]) -> None:
    """Refuse a video_pretrained checkpoint whose architecture or input differs from what the
    consumer (a classifier, an embedder) is about to build, naming both and the key to change.
    `keys` maps model / num_frames / size / clip_input to the consumer's dotted config keys."""
    if state.get("model_name") != "video_pretrained":
        return
    args = state.get("model_args", {})
    found = {"model": args.get("backbone"), "num_frames": args.get("num_frames"), "size": args.get("image_size"),
             "clip_input": args.get("clip_input")}
    wanted = {"model": model, "num_frames": num_frames, "size": size, "clip_input": clip_input}
    bad = [k for k in wanted if found[k] is not None and found[k] != wanted[k]]
    if bad:
        what = ", ".join(f"{k} {found[k]} (this run: {wanted[k]})" for k in bad)
        sets = " ".join(f"--set {keys[k]}={found[k]}" for k in bad)
        raise ActionopsError(f"{source} was pretrained with {what}",
                             f"match the pretrained backbone: {sets}, or pretrain again with this input")
