"""The seq2seq training loop (Ray Train workers, through `platform.train.run_training`): Adam,
MSE of the predicted target frames (the decoder fed its own predictions), gradient clipping;
windows from the worker's Ray Data shard, shuffled per epoch. With `sequences.adversarial` > 0
the two GRU discriminators of the subject-86 variant join in (their own Adam; the seq2seq's loss
adds `adversarial` x their fooled-loss; `models.seq2seq.adversarial_losses`)."""

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
    weight = float(getattr(c, "adversarial", 0.0))
    critics = critic_optimizer = None
    if weight > 0:
        from actionops.models.seq2seq import adversarial_losses

        critics = torch.nn.ModuleList([create_model("sequence_discriminator", dims=config["model_args"]["dims"])
                                       for _ in range(2)]).to(ctx.device)
        critic_optimizer = torch.optim.Adam(critics.parameters(), lr=c.lr)
        if state and state.get("discriminators"):
            critics.load_state_dict(state["discriminators"])
            critic_optimizer.load_state_dict(state["discriminator_optimizer"])
    shard = ray.train.get_dataset_shard("train")
    for epoch in ctx.epochs(state["epoch"] if state else 0, c.epochs):
        total, critic_total, count = 0.0, 0.0, 0
        for batch in shard.iter_batches(batch_size=c.batch_size, batch_format="numpy", local_shuffle_buffer_size=256,
                                        local_shuffle_seed=ctx.seed * 1000 + epoch):
            w = torch.from_numpy(np.asarray(batch["window"], np.float32)).to(ctx.device)
            with ctx.autocast():
                predicted = model(w[:, :source_len])
            mse = torch.mean((predicted.float() - w[:, source_len:]) ** 2)
            if critics is None:
                ctx.step(mse, optimizer, params, clip=c.clip_grad)
            else:  # the seq2seq steps first: the critics' step changes weights its backward still needs
                fooled, critic_loss = adversarial_losses(critics, w[:, :source_len], w[:, source_len:], predicted.float())
                ctx.step(mse + weight * fooled, optimizer, params, clip=c.clip_grad)
                ctx.step(critic_loss, critic_optimizer, list(critics.parameters()), clip=c.clip_grad)
                critic_total += float(critic_loss) * len(w)
            total += float(mse) * len(w)
            count += len(w)
        metrics = {"loss": total / max(count, 1)}
        extra = {}
        if critics is not None:
            metrics["discriminator_loss"] = critic_total / max(count, 1)
            extra = {"discriminators": critics.state_dict(), "discriminator_optimizer": critic_optimizer.state_dict()}
        ctx.end_epoch(epoch, metrics, {"model": unwrap(model).state_dict(), "optimizer": optimizer.state_dict(), **extra})
