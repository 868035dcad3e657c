"""Training loops run on Ray Train workers (through `platform.train.run_training`).

Each loop rebuilds its model through the registry, restores the latest checkpoint (resume or
recovery after a failure), trains on its dataset shard and ends every epoch with
`ctx.end_epoch` (checkpoint + report + rank-0 MLflow metrics).
"""

from __future__ import annotations

from typing import Any

import numpy as np


MODEL_KEYS = ("frames", "flow", "rois", "mask", "spatial", "motion")


def _tensors(batch: dict, keys: tuple[str, ...], device: Any) -> dict:
    import torch

    return {k: torch.from_numpy(np.array(batch[k])).to(device) for k in keys}


def autoencoder_loop(config: dict) -> None:
    """MSE pretraining of one 3D-conv autoencoder on `config["key"]` ("frames" or "flow")."""
    import ray.train
    import torch
    import torch.nn.functional as F

    from actionops.models import create_model
    from actionops.platform.train import load_checkpoint, unwrap, worker_context

    a = config["autoencoder"]
    ctx = worker_context(config)
    torch.manual_seed(ctx.seed)
    model = create_model(config["model_name"], **config["model_args"])
    state = load_checkpoint()
    if state:
        model.load_state_dict(state["model"])
    model = ctx.prepare(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=a.lr)
    if state:
        optimizer.load_state_dict(state["optimizer"])
    start = state["epoch"] if state else 0
    key = config["key"]
    shard = ray.train.get_dataset_shard("train")
    for epoch in ctx.epochs(start, a.epochs):
        total, count = 0.0, 0
        for batch in shard.iter_batches(batch_size=a.batch_size, batch_format="numpy"):
            x = _tensors(batch, (key,), ctx.device)[key]
            with ctx.autocast():
                recon, _ = model(x)
            loss = F.mse_loss(recon.float(), x)
            ctx.step(loss, optimizer)
            total += float(loss) * len(x)
            count += len(x)
        state_out = {"model_name": config["model_name"], "model_args": config["model_args"],
                     "model": unwrap(model).state_dict(), "optimizer": optimizer.state_dict()}
        ctx.end_epoch(epoch, {"loss": total / max(count, 1)}, state_out)


def clustering_loop(config: dict) -> None:
    """Joint training: encoders get MSE + lmd_cm x KL(p||q), decoders MSE, the head KL (with a
    frozen pretrained backbone as the feature extractor only the head trains, on KL); the DEC
    target p is recomputed over the worker's whole shard every `update_interval` epochs."""
    import ray.train
    import torch
    import torch.nn.functional as F

    from actionops.models import create_model
    from actionops.models.dec import dec_target
    from actionops.platform.train import load_checkpoint, unwrap, worker_context

    c, o = config["clustering"], config["optim"]
    ctx = worker_context(config)
    torch.manual_seed(ctx.seed)
    model = create_model(config["model_name"], **config["model_args"])
    state = load_checkpoint()
    model.load_state_dict(state["model"] if state else torch.load(config["init_path"], weights_only=True)["model"])
    model = ctx.prepare(model)
    core = unwrap(model)
    groups = [{"params": core.head.parameters(), "lr": o.lr_cm}]
    if hasattr(core, "frame_ae"):  # autoencoder features train with the head; a pretrained backbone stays frozen
        groups = [{"params": core.frame_ae.parameters(), "lr": o.lr_ae_frame},
                  {"params": core.flow_ae.parameters(), "lr": o.lr_ae_flow}, *groups]
    optimizer = torch.optim.Adam(groups, weight_decay=o.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, c.epochs // 2), gamma=0.1)
    if state:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    start = state["epoch"] if state else 0
    shard = ray.train.get_dataset_shard("train")
    keys = MODEL_KEYS
    targets: dict[str, torch.Tensor] = {}
    cache = FeatureCache(core)
    for epoch in ctx.epochs(start, c.epochs):
        if not targets or epoch % c.update_interval == 0:
            targets = _dec_targets(model, shard, c.batch_size, ctx, keys, dec_target, cache)
        sums = {"loss": 0.0, "mse_frame": 0.0, "mse_flow": 0.0, "kl": 0.0}
        batches = 0
        model.train()
        for batch in shard.iter_batches(batch_size=c.batch_size, batch_format="numpy"):
            t = _tensors(batch, keys, ctx.device)
            rois, spatial, motion, _ = core.person_inputs(t)
            with ctx.autocast():
                _, q, rec_frame, rec_flow = model(t["frames"], t["flow"], rois, spatial, motion, reconstruct=True,
                                                  **cache.kwargs(batch, t["frames"]))
            p = torch.cat([targets[_key(v, s)] for v, s in zip(batch["video_id"], batch["start"])]).to(ctx.device)
            kl = F.kl_div(q.float().clamp_min(1e-8).log(), p, reduction="batchmean")
            zero = torch.zeros((), device=kl.device)
            mse_frame = F.mse_loss(rec_frame.float(), t["frames"]) if rec_frame is not None else zero
            mse_flow = F.mse_loss(rec_flow.float(), t["flow"]) if rec_flow is not None else zero
            loss = mse_frame + mse_flow + o.lmd_cm * kl
            ctx.step(loss, optimizer)
            for name, value in (("loss", loss), ("mse_frame", mse_frame), ("mse_flow", mse_flow), ("kl", kl)):
                sums[name] += float(value)
            batches += 1
        scheduler.step()
        metrics = {k: v / max(batches, 1) for k, v in sums.items()}
        state_out = {"model_name": config["model_name"], "model_args": config["model_args"],
                     "model": core.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict()}
        ctx.end_epoch(epoch, metrics, state_out)


def _key(video_id: Any, start: Any) -> str:
    return f"{video_id}@{int(start)}"


class FeatureCache:
    """Feature maps of a frozen backbone per window (`individual_clustering_backbone`): computed
    on first sight, kept while they fit in `budget_bytes` (beyond that, recomputed every pass).
    For the autoencoder model (which trains its encoders) it is a no-op."""

    def __init__(self, core: Any, budget_bytes: float = 2e9) -> None:
        self.active = hasattr(core, "feature_map")
        self.core, self.budget, self.used = core, budget_bytes, 0
        self.maps: dict[str, Any] = {}

    def kwargs(self, batch: dict, frames: Any) -> dict:
        """{"fmap": ...} for the model's forward (empty for models without a frozen backbone)."""
        import torch

        if not self.active:
            return {}
        keys = [_key(v, s) for v, s in zip(batch["video_id"], batch["start"])]
        if all(k in self.maps for k in keys):
            return {"fmap": torch.stack([self.maps[k] for k in keys]).to(frames.device)}
        fmap = self.core.feature_map(frames)
        for key, one in zip(keys, fmap):
            if key not in self.maps and self.used + one.numel() * one.element_size() <= self.budget:
                self.maps[key] = one.detach().cpu()
                self.used += one.numel() * one.element_size()
        return {"fmap": fmap}


def _dec_targets(model, shard, batch_size, ctx, keys, dec_target, cache: FeatureCache) -> dict:
    """q for every person of the shard (no grad), then p over all of them, split per window."""
    import torch

    from actionops.platform.train import unwrap

    core = unwrap(model)
    model.eval()
    qs, owners = [], []
    with torch.no_grad():
        for batch in shard.iter_batches(batch_size=batch_size, batch_format="numpy"):
            t = _tensors(batch, keys, ctx.device)
            rois, spatial, motion, _ = core.person_inputs(t)
            _, q = model(t["frames"], t["flow"], rois, spatial, motion, **cache.kwargs(batch, t["frames"]))
            qs.append(q.float().cpu())
            counts = t["mask"].sum(dim=1).long().tolist()
            owners += [(_key(v, s), n) for v, s, n in zip(batch["video_id"], batch["start"], counts)]
    model.train()
    p = dec_target(torch.cat(qs)) if qs else torch.zeros(0)
    out, offset = {}, 0
    for key, n in owners:
        out[key] = p[offset:offset + n]
        offset += n
    return out
