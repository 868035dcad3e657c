"""The embedding-autoencoder training loop (Ray Train workers, through `platform.train.run_training`).

Adam with weight decay on the normal action's training embeddings, summed squared error per row
(the anomaly score), gradient clipping. Each epoch reports the training loss, the mean error of
the normal validation videos (`val_loss`) and, when the validation split holds other actions,
the validation ROC-AUC; the best weights are kept by val ROC-AUC (ties: lower val loss), else by
val loss. Several workers split the training rows by rank (DDP).
"""

from __future__ import annotations

import copy
import math

import numpy as np


def val_metrics(model, x_normal, x_other, device) -> dict:
    import torch

    from actionops.platform.train import unwrap

    net = unwrap(model)
    net.eval()
    with torch.no_grad():
        normal = net.errors(torch.as_tensor(x_normal, device=device)).cpu().numpy() if len(x_normal) else np.zeros(0)
        other = net.errors(torch.as_tensor(x_other, device=device)).cpu().numpy() if len(x_other) else np.zeros(0)
    net.train()
    out = {"val_loss": float(normal.mean()) if len(normal) else math.nan}
    if len(normal) and len(other):
        from sklearn.metrics import roc_auc_score

        out["val_roc_auc"] = float(roc_auc_score(np.r_[np.zeros(len(normal)), np.ones(len(other))], np.r_[normal, other]))
    return out


def autoencoder_loop(config: dict) -> None:
    import torch

    from actionops.models import create_model
    from actionops.platform.train import load_checkpoint, unwrap, worker_context

    c = config["anomaly"]
    ctx = worker_context(config)
    torch.manual_seed(ctx.seed)
    model = create_model(config["model_name"], **config["model_args"])
    state = load_checkpoint()
    if state:
        model.load_state_dict(state["model"])
    model = ctx.prepare(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
    if state:
        optimizer.load_state_dict(state["optimizer"])
    x_train = np.asarray(config["x_train"], np.float32)[ctx.rank::ctx.world_size]
    x_val, x_val_other = (np.asarray(config[k], np.float32) for k in ("x_val", "x_val_other"))
    best = {k: state[k] for k in ("best_model", "best_score", "best_loss", "best_epoch")} if state else \
        {"best_model": None, "best_score": -math.inf, "best_loss": math.inf, "best_epoch": 0}
    for epoch in ctx.epochs(state["epoch"] if state else 0, c.epochs):
        order = torch.randperm(len(x_train)).numpy()
        total, count = 0.0, 0
        for start in range(0, len(order), c.batch_size):
            idx = order[start:start + c.batch_size]
            if len(idx) < 2:  # BatchNorm needs two rows
                continue
            x = torch.from_numpy(x_train[idx]).to(ctx.device)
            recon, target = model(x)  # through DDP's forward when there are several workers
            loss = ((recon - target) ** 2).sum(dim=1).mean()
            ctx.step(loss, optimizer, list(model.parameters()), clip=1.0)
            total += float(loss) * len(idx)
            count += len(idx)
        metrics = {"train_loss": total / max(count, 1), **val_metrics(model, x_val, x_val_other, ctx.device)}
        score = metrics.get("val_roc_auc", 0.0)
        loss = metrics["val_loss"] if not math.isnan(metrics["val_loss"]) else metrics["train_loss"]
        if score > best["best_score"] or (score == best["best_score"] and loss < best["best_loss"]):
            best = {"best_model": copy.deepcopy(unwrap(model).state_dict()), "best_score": score, "best_loss": loss,
                    "best_epoch": epoch + 1}
        metrics["best_epoch"] = best["best_epoch"]
        ctx.end_epoch(epoch, metrics, {"model": unwrap(model).state_dict(), "optimizer": optimizer.state_dict(), **best})



def clip_autoencoder_loop(config: dict) -> None:
    """End-to-end mode: backbone + autoencoder trained on clips of the normal action's training
    videos (drawn, augmented, seeded per (seed, epoch, slot) as the classifier's). The backbone is
    frozen for `anomaly.unfreeze_after` epochs, then trained at `anomaly.backbone_lr` with its
    BatchNorm statistics kept and the autoencoder's input standardisation frozen, so the target
    cannot drift with the backbone. Validation scores the val videos' clips each epoch."""
    import ray.train
    import torch

    from actionops.models import create_model
    from actionops.pipelines.clip_classification.data import epoch_batches
    from actionops.platform.train import load_checkpoint, unwrap, worker_context

    c = config["anomaly"]
    ctx = worker_context(config)
    torch.manual_seed(ctx.seed)
    model = create_model("clip_autoencoder", **config["model_args"])
    state = load_checkpoint()
    if state:
        model.load_state_dict(state["model"])
    else:
        missing, _ = model.backbone.load_state_dict(config["backbone_weights"], strict=False)
        assert not missing, f"backbone weights lack {missing[:3]}"
    model = ctx.prepare(model)
    net = unwrap(model)
    optimizer = torch.optim.Adam([{"params": list(net.autoencoder.parameters()), "lr": c.lr},
                                  {"params": list(net.backbone.parameters()), "lr": 0.0}], weight_decay=c.weight_decay)
    if state:
        optimizer.load_state_dict(state["optimizer"])
    val = ray.train.get_dataset_shard("val")
    best = {k: state[k] for k in ("best_model", "best_score", "best_loss", "best_epoch")} if state else \
        {"best_model": None, "best_score": -math.inf, "best_loss": math.inf, "best_epoch": 0}
    for epoch in ctx.epochs(state["epoch"] if state else 0, c.epochs):
        unfrozen = epoch >= c.unfreeze_after
        for p in net.backbone.parameters():
            p.requires_grad_(unfrozen)
        optimizer.param_groups[1]["lr"] = c.backbone_lr if unfrozen else 0.0
        model.train()
        net.backbone.eval()  # BatchNorm statistics of the backbone stay as trained
        if unfrozen:
            net.autoencoder.norm.eval()  # the target's standardisation is fixed once the backbone moves
        total, count = 0.0, 0
        for batch in epoch_batches(config["draws"], epoch, ctx.rank, ctx.world_size, c.batch_size, ctx.clips_ahead):
            x = torch.from_numpy(np.asarray(batch["clip"])).to(ctx.device)
            if len(x) < 2:
                continue
            with ctx.autocast():
                recon, target = model(x)
            loss = ((recon.float() - target.float()) ** 2).sum(dim=1).mean()
            ctx.step(loss, optimizer, [p for p in model.parameters() if p.requires_grad], clip=1.0)
            total += float(loss) * len(x)
            count += len(x)
        metrics = {"train_loss": total / max(count, 1), "backbone_trained": float(unfrozen),
                   **_clip_val_metrics(net, val, c.batch_size, ctx.device)}
        score = metrics.get("val_roc_auc", 0.0)
        loss = metrics["val_loss"] if not math.isnan(metrics["val_loss"]) else metrics["train_loss"]
        if score > best["best_score"] or (score == best["best_score"] and loss < best["best_loss"]):
            best = {"best_model": copy.deepcopy(net.state_dict()), "best_score": score, "best_loss": loss,
                    "best_epoch": epoch + 1}
        metrics["best_epoch"] = best["best_epoch"]
        ctx.end_epoch(epoch, metrics, {"model": net.state_dict(), "optimizer": optimizer.state_dict(), **best})


def _clip_val_metrics(net, val, batch_size: int, device) -> dict:
    """Per-video mean clip error of the val videos: val_loss (normal) and val_roc_auc."""
    import torch

    net.eval()
    errors: dict[str, list[float]] = {}
    anomalous: dict[str, int] = {}
    with torch.no_grad():
        for batch in val.iter_batches(batch_size=batch_size, batch_format="numpy"):
            e = net.errors(torch.from_numpy(np.asarray(batch["clip"])).to(device)).float().cpu().numpy()
            for vid, a, value in zip(batch["video_id"], batch["anomalous"], e):
                errors.setdefault(str(vid), []).append(float(value))
                anomalous[str(vid)] = int(a)
    net.train()
    ids = sorted(errors)
    scores = np.array([np.mean(errors[v]) for v in ids])
    labels = np.array([anomalous[v] for v in ids])
    out = {"val_loss": float(scores[labels == 0].mean()) if (labels == 0).any() else math.nan}
    if (labels == 0).any() and (labels == 1).any():
        from sklearn.metrics import roc_auc_score

        out["val_roc_auc"] = float(roc_auc_score(labels, scores))
    return out
