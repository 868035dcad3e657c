"""The pretraining loop (Ray Train workers, through `platform.train.run_training`): methods.md §5.

Every video is an instance. Each epoch draws `clips_per_video` augmented clips of every video
(the classifier's seeded draws, the video's index as its label); the network maps a clip to a
unit vector v; the memory bank holds one vector per video, m_i <- normalise(mu m_i + (1 - mu) v).
The bank starts as the untrained
network's embedding of one clip per video (`fill_bank`). Logits are v . m_j / temperature over the bank (all of it when it has at most `nce_negatives`
entries, else the video's own entry and `nce_negatives` entries drawn at random).

Three stages by epoch (`pretrain.ir_epochs`, `la_epochs`, the rest of `epochs`):
1. instance recognition: cross-entropy of the video's own entry (non-parametric softmax, Wu et al. 2018);
2. Local Aggregation (Zhuang et al. 2019): background neighbours B = the `background` nearest bank
   entries, close neighbours C = the videos in the same trajectory cluster (the fixed prior from
   `trajectories cluster`); loss -log(P(C and B) / P(B)), P(A) = sum over A of exp(logit);
3. tuning: as 2, with C from faiss k-means recomputed every epoch on [bank, fisher_weight x Fisher
   vectors] (computed on rank 0 and broadcast, so every worker uses the same clusters).

DDP: each worker draws its own slots; after every step the features and video indices of all
workers are gathered and every worker applies the same bank update, so the banks stay equal (a
checksum is compared at the end of each epoch; a mismatch stops the run). SGD with momentum,
linear warm-up then cosine. Reported per epoch: `loss` (the stage's objective), `ir_loss` (the
instance objective, every stage), `stage`, `lr`, and `bank_nmi` (k-means of the bank against the
labels, when the dataset has labels; the labels never enter the loss).
"""

from __future__ import annotations

import numpy as np

STAGE_NAMES = {1: "instance recognition", 2: "local aggregation", 3: "tuning"}


def stage_of(epoch: int, c) -> int:
    """1, 2 or 3: the stage of (0-based) `epoch` under config `c`."""
    if epoch < c.ir_epochs:
        return 1
    if epoch < c.ir_epochs + c.la_epochs:
        return 2
    return 3


def singletons(assign: np.ndarray) -> np.ndarray:
    """Cluster ids with every -1 (no cluster: a video without trajectories) made its own cluster."""
    out = np.asarray(assign, np.int64).copy()
    free = out.max(initial=-1) + 1
    for i in np.flatnonzero(out < 0):
        out[i], free = free, free + 1
    return out


def bank_logits(v, bank, idx, temperature: float, negatives: int, generator):
    """(logits (B, M), target column (B,), columns (M,) bank rows the logits refer to)."""
    import torch

    n = bank.shape[0]
    if n <= negatives:
        return v @ bank.T / temperature, idx, torch.arange(n, device=bank.device)
    drawn = torch.randint(0, n, (negatives,), generator=generator).to(bank.device)
    columns = torch.cat([idx, drawn])
    return v @ bank[columns].T / temperature, torch.arange(len(idx), device=bank.device), columns


def la_loss(logits, target, columns, assign, background: int):
    """Local Aggregation: -log(P(C and B) / P(B)) per row, averaged. B: the `background` largest
    logits plus the row's own entry; C: columns whose cluster equals the row's."""
    import torch

    rows = torch.arange(len(target), device=logits.device)
    k = min(background, logits.shape[1])
    back = torch.zeros_like(logits, dtype=torch.bool)
    back.scatter_(1, logits.topk(k, dim=1).indices, True)
    back[rows, target] = True
    own = assign[columns[target]]
    close = back & (assign[columns][None, :] == own[:, None])
    neg = torch.finfo(logits.dtype).min
    return (torch.logsumexp(logits.masked_fill(~back, neg), 1) - torch.logsumexp(logits.masked_fill(~close, neg), 1)).mean()


def tuning_clusters(bank: np.ndarray, fisher: np.ndarray | None, weight: float, k: int, seed: int) -> np.ndarray:
    """faiss k-means of [bank, weight x Fisher vectors] (rows L2-normalised parts) into k clusters."""
    from actionops.pipelines.trajectory_clustering.clusters import kmeans

    parts = [bank / np.maximum(np.linalg.norm(bank, axis=1, keepdims=True), 1e-12)]
    if fisher is not None and weight > 0:
        parts.append(weight * fisher / np.maximum(np.linalg.norm(fisher, axis=1, keepdims=True), 1e-12))
    return kmeans(np.concatenate(parts, 1), min(k, len(bank)), restarts=3, seed=seed)[0]


def bank_nmi(bank: np.ndarray, labels: np.ndarray, seed: int) -> float | None:
    from sklearn.metrics import normalized_mutual_info_score

    from actionops.pipelines.trajectory_clustering.clusters import kmeans

    known = labels >= 0
    classes = len(set(labels[known].tolist()))
    if classes < 2:
        return None
    assign = kmeans(bank[known], classes, restarts=3, seed=seed)[0]
    return float(normalized_mutual_info_score(labels[known], assign))


def fill_bank(net, config: dict, ctx, n: int):
    """The starting bank: the untrained network's embedding of one clip (the middle one, no
    augmentation) of every video, with training-mode BatchNorm; workers split the videos and gather
    the rows. The loss then starts where the untrained network is, and stays there when nothing
    learns (the method's 20 sample videos, tiny config: 2.84 -> 2.73 over 6 epochs at lr 1e-12,
    2.98 -> 2.17 at lr 0.01). A random or empty bank makes the loss fall as the bank fills, learning or not."""
    import torch
    import torch.distributed as dist

    from actionops.pipelines.clip_classification.data import eval_clip_maker

    c = config["pretrain"]
    videos = {int(v["label"]): v for v in config["draws"]["videos"]}  # the label of a video is its index
    make = eval_clip_maker(c.num_frames, c.size, 1, c.clip_input)
    per = -(-n // ctx.world_size)
    mine = list(range(ctx.rank, n, ctx.world_size))
    feats = torch.zeros(per, c.dim, device=ctx.device)
    ids = torch.full((per,), -1, dtype=torch.long, device=ctx.device)
    net.train()  # the BatchNorm of training (batch statistics): the same features the first steps compare
    with torch.no_grad():
        for start in range(0, len(mine), c.batch_size):
            chunk = mine[start:start + c.batch_size]
            clips = np.stack([make({"path": videos[i]["path"], "frames": videos[i]["frames"], "k": 0}) for i in chunk])
            with ctx.autocast():
                v = net(torch.from_numpy(clips).to(ctx.device))
            feats[start:start + len(chunk)] = v.float()
            ids[start:start + len(chunk)] = torch.as_tensor(chunk, device=ctx.device)
    if ctx.world_size > 1 and dist.is_available() and dist.is_initialized():
        feats_all = [torch.empty_like(feats) for _ in range(ctx.world_size)]
        ids_all = [torch.empty_like(ids) for _ in range(ctx.world_size)]
        dist.all_gather(feats_all, feats)
        dist.all_gather(ids_all, ids)
        feats, ids = torch.cat(feats_all), torch.cat(ids_all)
    bank = torch.zeros(n, c.dim, device=ctx.device)
    keep = ids >= 0
    bank[ids[keep]] = torch.nn.functional.normalize(feats[keep], dim=1)
    return bank.cpu()


def pretrain_loop(config: dict) -> None:
    import torch
    import torch.distributed as dist
    from torch.nn import functional as F

    from actionops.models import create_model
    from actionops.pipelines.clip_classification.data import epoch_batches
    from actionops.pipelines.clip_classification.loops import lr_factor
    from actionops.platform.train import load_checkpoint, unwrap, worker_context

    c = config["pretrain"]
    ctx = worker_context(config)
    torch.manual_seed(ctx.seed)
    model = create_model("video_pretrained", **config["model_args"])
    n = int(config["instances"])
    state = load_checkpoint()
    if state:
        model.load_state_dict(state["model"])
        bank = state["bank"].float()
    else:
        bank = None
    model = ctx.prepare(model)
    net = unwrap(model)
    if bank is None:
        bank = fill_bank(net, config, ctx, n)
    optimizer = torch.optim.SGD(model.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
    if state:
        optimizer.load_state_dict(state["optimizer"])
    bank = bank.to(ctx.device)
    prior = torch.as_tensor(singletons(np.asarray(config["prior"], np.int64)), device=ctx.device)
    fisher = np.asarray(config["fisher"], np.float32) if config.get("fisher") is not None else None
    labels = np.asarray(config["labels"], np.int64)
    distributed = ctx.world_size > 1 and dist.is_available() and dist.is_initialized()
    for epoch in ctx.epochs(state["epoch"] if state else 0, c.epochs):
        stage = stage_of(epoch, c)
        lr = c.lr * lr_factor(epoch, c.epochs, c.warmup_epochs)
        for group in optimizer.param_groups:
            group["lr"] = lr
        assign = None
        if stage == 2:
            assign = prior
        elif stage == 3:
            found = torch.as_tensor(singletons(tuning_clusters(bank.cpu().numpy(), fisher, c.fisher_weight,
                                                               int(config["tune_k"]), ctx.seed + epoch)),
                                    device=ctx.device)
            if distributed:  # rank 0's clusters for everyone (faiss threads may round differently)
                dist.broadcast(found, 0)
            assign = found
        generator = torch.Generator().manual_seed(ctx.seed * 7919 + epoch * 131 + ctx.rank)
        model.train()
        total, ir_total, count = 0.0, 0.0, 0
        for batch in epoch_batches(config["draws"], epoch, ctx.rank, ctx.world_size, c.batch_size, ctx.clips_ahead):
            x = torch.from_numpy(np.asarray(batch["clip"])).to(ctx.device)
            idx = torch.from_numpy(np.asarray(batch["label"], np.int64)).to(ctx.device)
            if len(x) < 2:  # BatchNorm needs two clips (every worker has the same batch sizes)
                continue
            with ctx.autocast():
                v = model(x)
            v = F.normalize(v.float(), dim=1)
            logits, target, columns = bank_logits(v, bank, idx, c.temperature, c.nce_negatives, generator)
            ir = F.cross_entropy(logits, target)
            loss = ir if stage == 1 else la_loss(logits, target, columns, assign, c.background)
            ctx.step(loss, optimizer, list(model.parameters()), clip=None)
            feats, ids = v.detach(), idx
            if distributed:
                feats_all = [torch.empty_like(feats) for _ in range(ctx.world_size)]
                ids_all = [torch.empty_like(ids) for _ in range(ctx.world_size)]
                dist.all_gather(feats_all, feats)
                dist.all_gather(ids_all, ids)
                feats, ids = torch.cat(feats_all), torch.cat(ids_all)
            with torch.no_grad():
                bank[ids] = F.normalize(c.bank_momentum * bank[ids] + (1 - c.bank_momentum) * feats, dim=1)
            total += float(loss) * len(x)
            ir_total += float(ir) * len(x)
            count += len(x)
        if distributed:  # the banks must be equal on every worker
            digest = bank.double().sum().reshape(1) + (bank.double() * torch.arange(1, n + 1, device=bank.device)[:, None]).sum()
            digests = [torch.empty_like(digest) for _ in range(ctx.world_size)]
            dist.all_gather(digests, digest)
            if max(abs(float(d) - float(digest)) for d in digests) > 1e-3:
                raise RuntimeError(f"memory banks differ across workers after epoch {epoch + 1}: "
                                   f"{[round(float(d), 4) for d in digests]}")
        metrics = {"loss": total / max(count, 1), "ir_loss": ir_total / max(count, 1), "stage": float(stage), "lr": lr}
        nmi = bank_nmi(bank.cpu().numpy(), labels, ctx.seed) if ctx.rank == 0 else None
        if nmi is not None:
            metrics["bank_nmi"] = nmi
        ctx.end_epoch(epoch, metrics, {"model": net.state_dict(), "optimizer": optimizer.state_dict(),
                                       "bank": bank.cpu()})
