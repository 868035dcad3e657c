"""The seq2seq training loop (Ray Train workers, through `platform.train.run_training`): Adam,
MSE of the predicted target frames (the decoder fed its own predictions), gradient clipping;
windows from the worker's Ray Data shard, shuffled per epoch."""

from __future__ import annotations

import numpy as np


def seq2seq_loop(config: dict) -> None:
    import ray.train
    import torch

    from actionops.models import create_model
    from actionops.platform.train import load_checkpoint, unwrap, worker_context

    c = config["sequences"]
    source_len = int(c.source_len)
    ctx = worker_context(config)
    torch.manual_seed(ctx.seed)
    model = create_model(config["model_name"], **config["model_args"])
    state = load_checkpoint()
    if state:
        model.load_state_dict(state["model"])
    model = ctx.prepare(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=c.lr)
    if state:
        optimizer.load_state_dict(state["optimizer"])
    shard = ray.train.get_dataset_shard("train")
    for epoch in ctx.epochs(state["epoch"] if state else 0, c.epochs):
        total, count = 0.0, 0
        for batch in shard.iter_batches(batch_size=c.batch_size, batch_format="numpy", local_shuffle_buffer_size=256,
                                        local_shuffle_seed=ctx.seed * 1000 + epoch):
            w = torch.from_numpy(np.asarray(batch["window"], np.float32)).to(ctx.device)
            with ctx.autocast():
                predicted = model(w[:, :source_len])
            loss = torch.mean((predicted.float() - w[:, source_len:]) ** 2)
            ctx.step(loss, optimizer, params, clip=c.clip_grad)
            total += float(loss) * len(w)
            count += len(w)
        ctx.end_epoch(epoch, {"loss": total / max(count, 1)},
                      {"model": unwrap(model).state_dict(), "optimizer": optimizer.state_dict()})
