"""DEC-style clustering of people in video windows (individual clustering, method 1).

    frame latent (B, L, T', h, w) ─┐
                                    ├─ sum, mean over T' ─> (B, L, h, w)
    flow latent  (B, L, T', h, w) ─┘
      RoIAlign(person boxes in input pixels, spatial_scale 1/stride once, output 5x5) -> (R, L, 5, 5)
      Linear(L*25 -> ndf) -> z_vis (R, ndf)
      optional spatial feature d = |box centre - table centre| / |(W, H)|, Linear(1 -> ndf) -> z_spc
      z = 4 z_vis + z_spc
      optional motion descriptor m (per-person flow orientation histograms, sqrt + L2 normalised;
      unsigned orientations by default, so a periodic motion's two phases look alike):
      z = [z / |z|, motion_weight * m]  (our addition, off by default: see README "Quality")
      q = Student-t soft assignment of z to K centroids (alpha)       (R, K)
Other feature extractor (`individual_clustering_backbone`): a frozen pretrained video backbone
(`train pretrain`); RoIAlign on its `layer` feature map (mean over time) replaces the latents.
Fixes over the reference: boxes are scaled once (1/stride; the reference scaled twice, 1/64); centroids come from k-means
on the embeddings (`init_centroids`); the DEC target is computed over a whole batch/dataset.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import roi_align

from actionops.models.registry import register_model


def padded_to_rois(rois: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded boxes (B, P, 4) + mask (B, P) -> RoIAlign rois (R, 5) [batch index, x1, y1, x2, y2]
    and the flat indices (into B*P) of the real people."""
    b, p, _ = rois.shape
    flat = mask.reshape(-1) > 0
    index = torch.arange(b, device=rois.device, dtype=rois.dtype).repeat_interleave(p)
    out = torch.cat([index[:, None], rois.reshape(-1, 4)], dim=1)[flat]
    return out, flat.nonzero().squeeze(1)


def student_t_assignment(z: torch.Tensor, centroids: torch.Tensor, alpha: float) -> torch.Tensor:
    """q_ij = (1 + |z_i - mu_j|^2 / alpha)^(-(alpha+1)/2), normalised over j. (N, D), (K, D) -> (N, K)."""
    dist2 = torch.cdist(z, centroids).pow(2)
    q = (1.0 + dist2 / alpha).pow(-(alpha + 1.0) / 2.0)
    return q / q.sum(dim=1, keepdim=True)


def dec_target(q: torch.Tensor) -> torch.Tensor:
    """DEC target p_ij = (q_ij^2 / f_j) / sum_j'(q_ij'^2 / f_j'), f_j = sum_i q_ij, over all rows of q."""
    weight = q.pow(2) / q.sum(dim=0, keepdim=True)
    return weight / weight.sum(dim=1, keepdim=True)


class PersonClusteringHead(nn.Module):
    """Latents + person boxes -> embeddings and soft cluster assignments."""

    def __init__(self, latent_channels: int, n_clusters: int, ndf: int, alpha: float, roi_output: int,
                 spatial_scale: float, aligned: bool, add_spatial_feature: bool, motion_dim: int = 0,
                 motion_weight: float = 1.0, motion_spec: list | None = None, normalize: bool = False) -> None:
        super().__init__()
        self.normalize = normalize  # L2-normalise the embedding (the motion descriptor implies it)
        self.motion_spec = list(motion_spec) if motion_spec else None  # [grid, bins, unsigned] it was trained on
        self.alpha, self.roi_output, self.spatial_scale, self.aligned = alpha, roi_output, spatial_scale, aligned
        self.motion_dim, self.motion_weight = motion_dim, motion_weight
        self.embed = nn.Linear(latent_channels * roi_output * roi_output, ndf)
        self.spatial = nn.Linear(1, ndf) if add_spatial_feature else None
        self.centroids = nn.Parameter(torch.randn(n_clusters, ndf + motion_dim) * 0.1)

    def embed_people(self, latent: torch.Tensor, rois: torch.Tensor, spatial: torch.Tensor | None = None,
                     motion: torch.Tensor | None = None) -> torch.Tensor:
        """latent (B, L, T', h, w), rois (R, 5) [batch index, x1, y1, x2, y2] in input pixels,
        spatial (R, 1), motion (R, motion_dim) -> (R, ndf + motion_dim)."""
        pooled = latent.mean(dim=2)
        feats = roi_align(pooled, rois, output_size=self.roi_output, spatial_scale=self.spatial_scale,
                          sampling_ratio=2, aligned=self.aligned)
        z = self.embed(feats.flatten(1))
        if self.spatial is not None:
            if spatial is None:
                raise ValueError("the model has the spatial feature on: pass the distances")
            z = 4.0 * z + self.spatial(spatial)
        if self.motion_dim:
            if motion is None:
                raise ValueError("the model has the motion feature on: pass the descriptors")
            z = torch.cat([torch.nn.functional.normalize(z, dim=1), self.motion_weight * motion], dim=1)
        elif self.normalize:
            z = torch.nn.functional.normalize(z, dim=1)
        return z

    def forward(self, latent: torch.Tensor, rois: torch.Tensor, spatial: torch.Tensor | None = None,
                motion: torch.Tensor | None = None):
        z = self.embed_people(latent, rois, spatial, motion)
        return z, student_t_assignment(z, self.centroids, self.alpha)

    @torch.no_grad()
    def init_centroids(self, centres: torch.Tensor) -> None:
        """Set the centroids (e.g. from k-means on embeddings)."""
        self.centroids.copy_(centres.to(self.centroids))


@register_model("person_clustering_head")
def person_clustering_head(*, latent_channels: int = 64, n_clusters: int = 4, ndf: int = 32, alpha: float = 2.0,
                           roi_output: int = 5, spatial_scale: float = 1 / 4, aligned: bool = True,
                           add_spatial_feature: bool = False, motion_dim: int = 0,
                           motion_weight: float = 1.0, motion_spec: list | None = None,
                           normalize: bool = False) -> PersonClusteringHead:
    """DEC clustering head over person RoIs of fused autoencoder latents (or a backbone's feature
    map); `normalize` puts the embeddings on the unit sphere (the backbone variant's default)."""
    return PersonClusteringHead(latent_channels, n_clusters, ndf, alpha, roi_output, spatial_scale, aligned,
                                add_spatial_feature, motion_dim, motion_weight, motion_spec, normalize)


class PersonClusteringModel(nn.Module):
    """What both feature extractors share: padded batches -> people, and the serving entry point.
    Subclasses set `head` and implement `forward(frames, flow, rois, spatial, motion, reconstruct)`."""

    head: PersonClusteringHead

    def person_inputs(self, batch: dict[str, torch.Tensor]):
        """Padded batch -> (rois (R, 5), spatial (R, 1) or None, motion (R, D) or None, flat indices)."""
        rois, people = padded_to_rois(batch["rois"], batch["mask"])
        spatial = batch["spatial"].reshape(-1, 1)[people] if self.head.spatial is not None else None
        motion = batch["motion"].reshape(-1, self.head.motion_dim)[people] if self.head.motion_dim else None
        return rois, spatial, motion, people

    def infer(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Serving entry point: padded windows {frames (B,3,T,H,W), flow (B,2,T,H,W), rois (B,P,4),
        mask (B,P), spatial (B,P,1), motion (B,P,D)} -> soft assignments (B, P, K), zeros for padding."""
        b, p, _ = batch["rois"].shape
        rois, spatial, motion, people = self.person_inputs(batch)
        _, q = self(batch["frames"], batch["flow"], rois, spatial, motion)
        out = torch.zeros(b * p, q.shape[1], dtype=q.dtype)
        out[people] = q
        return out.reshape(b, p, -1)


class IndividualClusteringModel(PersonClusteringModel):
    """Both autoencoders + the head: frames, flow, rois (+ spatial) -> (embeddings, q)."""

    def __init__(self, frame_ae: nn.Module, flow_ae: nn.Module, head: PersonClusteringHead) -> None:
        super().__init__()
        self.frame_ae, self.flow_ae, self.head = frame_ae, flow_ae, head

    def fused_latent(self, frames: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        return self.frame_ae.encode(frames) + self.flow_ae.encode(flow)

    def forward(self, frames: torch.Tensor, flow: torch.Tensor, rois: torch.Tensor, spatial: torch.Tensor | None = None,
                motion: torch.Tensor | None = None, reconstruct: bool = False):
        """(embeddings (R, ndf), q (R, K)); with `reconstruct` also both reconstructions (for
        joint training, so DDP sees every output in one forward)."""
        frame_latent = self.frame_ae.encode(frames)
        flow_latent = self.flow_ae.encode(flow)
        z, q = self.head(frame_latent + flow_latent, rois, spatial, motion)
        if not reconstruct:
            return z, q
        size = tuple(frames.shape[2:])
        return z, q, self.frame_ae.decode(frame_latent, size), self.flow_ae.decode(flow_latent, size)


@register_model("individual_clustering")
def individual_clustering(*, frame_args: dict, flow_args: dict, head_args: dict) -> IndividualClusteringModel:
    """RGB and flow autoencoders plus the DEC head; args go to `conv3d_autoencoder` (x2) and
    `person_clustering_head`."""
    from actionops.models.autoencoder3d import conv3d_autoencoder

    return IndividualClusteringModel(conv3d_autoencoder(**frame_args), conv3d_autoencoder(**flow_args),
                                     person_clustering_head(**head_args))


class BackbonePersonClustering(PersonClusteringModel):
    """Person RoIs pooled from a frozen pretrained video backbone's feature map (methods.md §5's
    backbone as individual clustering's feature extractor) + the same DEC head.

    The window (B, 3, T, H, W) in [-1, 1] becomes the backbone's own input first: resized to its
    pretraining size, ImageNet-normalised, `num_frames` frames spread over the window (one per
    segment, as the classifier's evaluation clips) and, for `rgb_diff`, the difference
    frame t+1 - frame t (pairs inside the window). The feature map of `layer`
    (r3d_18: layer3 = 256 channels at 1/8 of the size, layer4 = 512 at 1/16) is averaged over
    time; boxes are mapped from window pixels onto it. The backbone never trains (eval mode,
    no gradients): only the head learns (KL), so there is nothing to reconstruct."""

    def __init__(self, backbone_args: dict, layer: str, head: PersonClusteringHead) -> None:
        super().__init__()
        from actionops.models.pretrain import VideoPretrained

        if layer not in BACKBONE_LAYERS:
            raise ValueError(f"backbone layer {layer!r}: choose one of {', '.join(BACKBONE_LAYERS)}")
        self.num_frames = int(backbone_args.get("num_frames", 16))
        self.size = int(backbone_args.get("image_size", 112))
        self.clip_input = str(backbone_args.get("clip_input", "rgb"))
        net = VideoPretrained(backbone_args.get("backbone", "r3d_18"), int(backbone_args.get("dim", 128))).net
        keep = BACKBONE_LAYERS[: BACKBONE_LAYERS.index(layer) + 1]
        self.backbone = nn.ModuleDict({"stem": net.stem, **{name: getattr(net, name) for name in keep}})
        self.layer = layer
        for param in self.backbone.parameters():
            param.requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1, 1), persistent=False)
        self.head = head

    def train(self, mode: bool = True) -> "BackbonePersonClustering":
        super().train(mode)
        self.backbone.eval()  # frozen: BatchNorm keeps its pretrained statistics
        return self

    def backbone_input(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) window in [-1, 1] -> (B, 3, num_frames, size, size) backbone input."""
        t = frames.shape[2]
        edges = torch.linspace(0, t, self.num_frames + 1)
        first = ((edges[:-1] + edges[1:]) / 2).long().clamp(0, t - 1)
        x = ((frames.float() + 1.0) / 2.0 - self.mean) / self.std
        if self.clip_input == "rgb_diff":
            first = first.clamp(max=max(t - 2, 0))
            clip = x[:, :, (first + 1).clamp(max=t - 1)] - x[:, :, first]
        else:
            clip = x[:, :, first]
        return nn.functional.interpolate(clip, size=(self.num_frames, self.size, self.size), mode="trilinear",
                                         align_corners=False)

    @torch.no_grad()
    def feature_map(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) window -> (B, C, T', h, w) feature map of `layer`."""
        x = self.backbone_input(frames)
        for module in self.backbone.values():
            x = module(x)
        return x

    def forward(self, frames: torch.Tensor, flow: torch.Tensor, rois: torch.Tensor, spatial: torch.Tensor | None = None,
                motion: torch.Tensor | None = None, reconstruct: bool = False, fmap: torch.Tensor | None = None):
        """As the autoencoder model's forward; `fmap` is this window batch's `feature_map` when the
        caller has it already (the backbone is frozen: training loops compute it once per window)."""
        fmap = self.feature_map(frames) if fmap is None else fmap
        scale = torch.tensor([1.0, fmap.shape[-1] / frames.shape[-1], fmap.shape[-2] / frames.shape[-2],
                              fmap.shape[-1] / frames.shape[-1], fmap.shape[-2] / frames.shape[-2]],
                             dtype=rois.dtype, device=rois.device)
        z, q = self.head(fmap, rois * scale, spatial, motion)  # head built with spatial_scale 1: boxes already on the map
        return (z, q, None, None) if reconstruct else (z, q)


BACKBONE_LAYERS = ("layer1", "layer2", "layer3", "layer4")
LAYER_CHANNELS = {"layer1": 64, "layer2": 128, "layer3": 256, "layer4": 512}  # 3D ResNet-18


@register_model("individual_clustering_backbone")
def individual_clustering_backbone(*, backbone_args: dict, layer: str = "layer3", head_args: dict,
                                   source: str = "") -> BackbonePersonClustering:
    """A frozen `video_pretrained` backbone (its model_args: backbone, dim, num_frames, image_size,
    clip_input) as the person feature extractor, plus the DEC head (`person_clustering_head`
    args, latent_channels = the layer's channels, spatial_scale 1). `source` records where the
    backbone's weights came from."""
    return BackbonePersonClustering(backbone_args, layer, person_clustering_head(**head_args))
