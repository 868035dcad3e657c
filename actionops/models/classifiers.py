"""Clip classifiers (methods.md §2). Every builder takes `num_classes`, `num_frames` and
`image_size` (square side) and returns a `ClipClassifier`: input (B, T, 3, H, W) normalised
frames, output (B, num_classes) logits; `infer({"clip": x})` gives class probabilities (the
MLflow pyfunc path).

    tsm_resnet18        ResNet-18 with a temporal shift (fold_div 8) before each stage, mean consensus
    r2plus1d_18         torchvision R(2+1)D-18
    r3d_18              torchvision 3D ResNet-18 (the backbone `train pretrain` pretrains: video_pretrained)
    cnn_lstm_resnet18   ResNet-18 frame encoder -> LSTM 512 -> temporal mean -> dropout 0.2 -> linear
    x3d_xs              pytorchvideo X3D (XS/S architecture) with an adaptive head pool
    slow_r50            pytorchvideo Slow-only ResNet-50 with an adaptive head pool
    vivit_tiny          our own factorised space-time transformer (spatial then temporal encoder)
    slowfast_r50        pytorchvideo SlowFast-R50 (exactly 32 frames), adaptive head pools

No builder downloads weights: pretrained weights come from a local file or an MLflow model
(`load_weights`). `freeze_until(model, "layer2")` freezes every parameter up to a named block.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import torch
from torch import nn

from actionops.errors import ActionopsError
from actionops.models.registry import register_model

CLASSIFIERS = ("tsm_resnet18", "r2plus1d_18", "r3d_18", "cnn_lstm_resnet18", "x3d_xs", "slow_r50", "vivit_tiny", "slowfast_r50")


class ClipClassifier(nn.Module):
    """Base: subclasses implement `forward(clip (B, T, 3, H, W)) -> logits (B, K)`."""

    @torch.no_grad()
    def infer(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.softmax(self(inputs["clip"].float()), dim=-1)


# ----------------------------------------------------------------------------- TSM
def temporal_shift(x: torch.Tensor, num_segments: int, fold_div: int = 8) -> torch.Tensor:
    """Shift 1/fold_div of the channels one step back in time, 1/fold_div forward, zero-filled.

    x is (B*T, C, H, W); channel block [0, fold) takes the next frame's values, [fold, 2 fold)
    the previous frame's, the rest is unchanged (Lin et al., TSM).
    """
    bt, c, h, w = x.shape
    x = x.view(bt // num_segments, num_segments, c, h, w)
    fold = c // fold_div
    out = torch.zeros_like(x)
    out[:, :-1, :fold] = x[:, 1:, :fold]
    out[:, 1:, fold:2 * fold] = x[:, :-1, fold:2 * fold]
    out[:, :, 2 * fold:] = x[:, :, 2 * fold:]
    return out.view(bt, c, h, w)


class TemporalShift(nn.Module):
    def __init__(self, num_segments: int, fold_div: int = 8) -> None:
        super().__init__()
        self.num_segments, self.fold_div = num_segments, fold_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return temporal_shift(x, self.num_segments, self.fold_div)


def _resnet18() -> nn.Module:
    from torchvision.models import resnet18

    return resnet18(weights=None)


class TSMResNet18(ClipClassifier):
    def __init__(self, num_classes: int, num_frames: int, fold_div: int = 8, dropout: float = 0.2) -> None:
        super().__init__()
        r = _resnet18()
        self.num_frames = num_frames
        self.stem = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool)
        self.layer1 = nn.Sequential(TemporalShift(num_frames, fold_div), r.layer1)
        self.layer2 = nn.Sequential(TemporalShift(num_frames, fold_div), r.layer2)
        self.layer3 = nn.Sequential(TemporalShift(num_frames, fold_div), r.layer3)
        self.layer4 = nn.Sequential(TemporalShift(num_frames, fold_div), r.layer4)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        b, t = clip.shape[:2]
        if t != self.num_frames:
            raise ValueError(f"TSM built for {self.num_frames} frames got {t}")
        x = self.stem(clip.flatten(0, 1))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = x.mean(dim=(2, 3)).view(b, t, -1)
        return self.fc(self.dropout(x)).mean(dim=1)  # average consensus over segments


@register_model("tsm_resnet18")
def tsm_resnet18(*, num_classes: int, num_frames: int = 16, image_size: int = 112, fold_div: int = 8,
                 dropout: float = 0.2) -> ClipClassifier:
    """TSM on ResNet-18: temporal shift (fold_div 8) before each of the four stages."""
    return TSMResNet18(num_classes, num_frames, fold_div, dropout)


# ----------------------------------------------------------------------------- torchvision video ResNets: R(2+1)D, R3D
class TorchvisionVideo(ClipClassifier):
    """A torchvision video ResNet (`arch`: r2plus1d_18, r3d_18) without pretrained weights; its
    tensors are named `net.*`."""

    def __init__(self, arch: str, num_classes: int) -> None:
        super().__init__()
        from torchvision.models import video

        self.net = getattr(video, arch)(weights=None, num_classes=num_classes)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.net(clip.transpose(1, 2))  # (B, 3, T, H, W)


@register_model("r2plus1d_18")
def r2plus1d_18(*, num_classes: int, num_frames: int = 16, image_size: int = 112) -> ClipClassifier:
    """torchvision R(2+1)D-18 (adaptive pooling: any T and size)."""
    return TorchvisionVideo("r2plus1d_18", num_classes)


@register_model("r3d_18")
def r3d_18(*, num_classes: int, num_frames: int = 16, image_size: int = 112) -> ClipClassifier:
    """torchvision 3D ResNet-18 (adaptive pooling: any T and size); the architecture of
    `video_pretrained`, whose weights it takes with --weights models:/video-pretrained@ALIAS."""
    return TorchvisionVideo("r3d_18", num_classes)


# ----------------------------------------------------------------------------- CNN-LSTM
class CNNLSTM(ClipClassifier):
    def __init__(self, num_classes: int, hidden: int = 512, dropout: float = 0.2) -> None:
        super().__init__()
        r = _resnet18()
        r.fc = nn.Identity()
        self.encoder = r
        self.lstm = nn.LSTM(512, hidden, num_layers=1, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        b, t = clip.shape[:2]
        feats = self.encoder(clip.flatten(0, 1)).view(b, t, -1)
        out, _ = self.lstm(feats)
        return self.fc(self.dropout(out.mean(dim=1)))


@register_model("cnn_lstm_resnet18")
def cnn_lstm_resnet18(*, num_classes: int, num_frames: int = 16, image_size: int = 112, hidden: int = 512,
                      dropout: float = 0.2) -> ClipClassifier:
    """ResNet-18 frame encoder, 1-layer LSTM (hidden 512), temporal mean pooling, dropout 0.2."""
    return CNNLSTM(num_classes, hidden, dropout)


# ----------------------------------------------------------------------------- pytorchvideo
def _pytorchvideo(module: str):
    """Import a pytorchvideo model module (its package-level import warns about torchvision)."""
    import importlib

    import torchvision

    sys.modules.setdefault("torchvision.transforms.functional_tensor", torchvision.transforms._functional_tensor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(module)


class Channels3D(ClipClassifier):
    """A (B, 3, T, H, W) network behind the (B, T, 3, H, W) interface."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        out = self.net(clip.transpose(1, 2))
        return out.flatten(1)


@register_model("x3d_xs")
def x3d_xs(*, num_classes: int, num_frames: int = 4, image_size: int = 160, dropout: float = 0.5) -> ClipClassifier:
    """pytorchvideo X3D-XS (the X3D-S network; XS differs by its 4-frame 160 px input). The head
    pool is adaptive, so any clip length and size work."""
    x3d = _pytorchvideo("pytorchvideo.models.x3d")
    net = x3d.create_x3d(input_clip_length=num_frames, input_crop_size=image_size, model_num_class=num_classes,
                         dropout_rate=dropout, head_activation=None)
    net.blocks[-1].pool.pool = nn.AdaptiveAvgPool3d(1)
    return Channels3D(net)


@register_model("slow_r50")
def slow_r50(*, num_classes: int, num_frames: int = 8, image_size: int = 224, dropout: float = 0.5) -> ClipClassifier:
    """pytorchvideo Slow-only ResNet-50 (stem kernel (1,7,7)) with an adaptive head pool."""
    resnet = _pytorchvideo("pytorchvideo.models.resnet")
    net = resnet.create_resnet(model_depth=50, model_num_class=num_classes, stem_conv_kernel_size=(1, 7, 7),
                               dropout_rate=dropout, head_activation=None)
    net.blocks[-1].pool = nn.AdaptiveAvgPool3d(1)
    return Channels3D(net)


# ----------------------------------------------------------------------------- ViViT
class ViViTTiny(ClipClassifier):
    """Factorised encoder (ViViT model 2): a spatial transformer over each frame's patches, then a
    temporal transformer over the frames' CLS tokens."""

    def __init__(self, num_classes: int, num_frames: int, image_size: int, patch: int = 16, dim: int = 192,
                 spatial_depth: int = 4, temporal_depth: int = 2, heads: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image_size {image_size} is not a multiple of the patch size {patch}")
        self.num_frames = num_frames
        self.patch_embed = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)
        n = (image_size // patch) ** 2
        self.space_cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.space_pos = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.time_cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.time_pos = nn.Parameter(torch.randn(1, num_frames + 1, dim) * 0.02)

        def encoder(depth: int) -> nn.TransformerEncoder:
            layer = nn.TransformerEncoderLayer(dim, heads, dim * 4, dropout, activation="gelu", batch_first=True,
                                               norm_first=True)
            return nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)

        self.space = encoder(spatial_depth)
        self.time = encoder(temporal_depth)
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        b, t = clip.shape[:2]
        if t != self.num_frames:
            raise ValueError(f"ViViT built for {self.num_frames} frames got {t}")
        x = self.patch_embed(clip.flatten(0, 1)).flatten(2).transpose(1, 2)  # (B*T, N, D)
        x = torch.cat([self.space_cls.expand(len(x), -1, -1), x], dim=1) + self.space_pos
        x = self.space(x)[:, 0].view(b, t, -1)
        x = torch.cat([self.time_cls.expand(b, -1, -1), x], dim=1) + self.time_pos
        return self.fc(self.norm(self.time(x)[:, 0]))


@register_model("vivit_tiny")
def vivit_tiny(*, num_classes: int, num_frames: int = 16, image_size: int = 112, patch: int = 16, dim: int = 192,
               spatial_depth: int = 4, temporal_depth: int = 2, heads: int = 3, dropout: float = 0.1) -> ClipClassifier:
    """Our small factorised space-time transformer (image_size must be a multiple of patch)."""
    return ViViTTiny(num_classes, num_frames, image_size, patch, dim, spatial_depth, temporal_depth, heads, dropout)


# ----------------------------------------------------------------------------- weights, freezing
HUB_WORDS = ("kinetics", "imagenet", "hub", "pretrained", "default")


def check_local_weights(source: str) -> None:
    """Refuse weight sources that would need a download (nothing is downloaded at run time)."""
    if source.split(":")[0].lower() in HUB_WORDS or source.lower() in HUB_WORDS:
        raise ActionopsError(f"weights {source!r} would need a download",
                             "nothing is downloaded at run time: pass a local weights file or models:/NAME@ALIAS")


def load_weights(model: nn.Module, state: dict[str, Any], source: str = "the weights") -> dict[str, Any]:
    """Load pretrained weights (a state dict, or a checkpoint dict holding one under `model`)
    into `model`. Tensors whose shape differs (a new head) are skipped and reported.
    Returns {"loaded": n, "skipped": [...]}."""
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(k for k in state if k not in usable)
    if not usable:
        raise ActionopsError(f"weights {source} share no tensor with this model",
                             "were they saved from the same architecture?")
    model.load_state_dict(usable, strict=False)
    return {"loaded": len(usable), "skipped": skipped}


def freeze_until(model: nn.Module, block: str) -> int:
    """Freeze every parameter registered up to and including module `block` (a name such as
    "layer2", matched against the end of the dotted module names). Returns the number of frozen
    parameter tensors; an unknown block lists the top-level blocks."""
    names = [name for name, _ in model.named_modules() if name]
    hits = [n for n in names if n == block or n.endswith("." + block)]
    if not hits:
        tops = []
        for name, _ in model.named_modules():
            parts = name.split(".")
            if name and len(parts) <= 2 and parts[-1] not in tops and not parts[-1].isdigit():
                tops.append(parts[-1])
        raise ActionopsError(f"no block named {block!r} in this model",
                             f"set classifier.freeze_until to one of: {', '.join(tops[:20])}")
    prefix = hits[0] + "."
    params = list(model.named_parameters())
    last = max(i for i, (name, _) in enumerate(params) if name.startswith(prefix))
    for _, param in params[:last + 1]:
        param.requires_grad_(False)
    return last + 1


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------- SlowFast
SLOWFAST_FRAMES = 32  # the fast pathway's 32 frames; the slow one takes every ALPHA-th
SLOWFAST_ALPHA = 4


class SlowFast(ClipClassifier):
    """pytorchvideo SlowFast-R50: the fast pathway sees all 32 frames, the slow one every 4th."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        fast = clip.transpose(1, 2)  # (B, 3, T, H, W)
        slow = fast[:, :, ::SLOWFAST_ALPHA]
        return self.net([slow, fast]).flatten(1)


@register_model("slowfast_r50")
def slowfast_r50(*, num_classes: int, num_frames: int = SLOWFAST_FRAMES, image_size: int = 224,
                 dropout: float = 0.5) -> ClipClassifier:
    """pytorchvideo SlowFast-R50 (alpha 4, beta 1/8; 2304-d before the head). Takes exactly 32
    frames (the fast pathway's length); the head pools are adaptive, so any square size works."""
    if num_frames != SLOWFAST_FRAMES:
        raise ActionopsError(f"slowfast_r50 takes exactly {SLOWFAST_FRAMES} frames, not {num_frames}",
                             f"its slow pathway samples every {SLOWFAST_ALPHA}th of {SLOWFAST_FRAMES} frames and its "
                             f"lateral connections are built for that: set the frame count to {SLOWFAST_FRAMES}")
    slowfast = _pytorchvideo("pytorchvideo.models.slowfast")
    net = slowfast.create_slowfast(model_num_class=num_classes, dropout_rate=dropout, head_activation=None)
    pools = net.blocks[-2].pool
    for i in range(len(pools)):
        pools[i] = nn.AdaptiveAvgPool3d(1)
    return SlowFast(net)


# ----------------------------------------------------------------------------- two streams
class TwoStream(ClipClassifier):
    """Late fusion of two streams (Simonyan & Zisserman): input (B, T, 6, H, W), channels 0-2 to the
    appearance network (RGB or RGB difference), 3-5 to the motion network (flow dx, dy, magnitude);
    the two networks' logits are averaged. Each stream is a whole classifier of the same kind."""

    def __init__(self, appearance: nn.Module, motion: nn.Module) -> None:
        super().__init__()
        self.appearance, self.motion = appearance, motion

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return (self.appearance(clip[:, :, :3]) + self.motion(clip[:, :, 3:])) / 2


@register_model("two_stream")
def two_stream(*, stream: str, num_classes: int, num_frames: int = 16, image_size: int = 112, **kwargs: Any) -> ClipClassifier:
    """Two `stream` classifiers (any of CLASSIFIERS, with its own keyword arguments), late-fused:
    the model of `classifier.clip_input` rgb+flow / rgb_diff+flow."""
    from actionops.models.registry import create_model

    if stream not in CLASSIFIERS:
        raise ActionopsError(f"two_stream: {stream!r} is not a clip classifier", f"choose one of {', '.join(CLASSIFIERS)}")
    nets = [create_model(stream, num_classes=num_classes, num_frames=num_frames, image_size=image_size, **kwargs)
            for _ in range(2)]
    return TwoStream(*nets)
