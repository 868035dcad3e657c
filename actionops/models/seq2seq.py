"""GRU sequence-to-sequence model for unsupervised sequence clustering (methods.md §4; Su &
Shlizerman 2020): the encoder reads `source` frames, the decoder predicts the next `target` frames
from its own predictions (no teacher forcing), a linear projection maps GRU states to frames.
The encoder's final state and the decoder's states are the window's embeddings.

Decoder variants (`decoder=`):
    learned        one GRU cell shared by encoder and decoder (the reference)
    fixed_weights  the decoder has its own GRU cell whose weights keep their random initialisation
                   (never trained): the decoder cannot learn to predict by itself, so the encoder's
                   final state has to carry the sequence (Su, Liu & Shlizerman 2020, "Predict &
                   Cluster", FW)
    fixed_state    every decoder step starts again from the encoder's final state (its own state is
                   not carried over), so everything the prediction needs flows through that state
                   (our reading of their FS variant)
`residual`: the projection predicts the change from the previous frame (Martinez et al. 2017).
`sequence_discriminator` / `adversarial_losses`: the two GRU discriminators of the reference's
subject-86 variant (`sequences.adversarial` > 0 adds them to the training loss).
"""

from __future__ import annotations

import torch
from torch import nn

from actionops.errors import ActionopsError
from actionops.models.registry import register_model

DECODERS = ("learned", "fixed_weights", "fixed_state")


class Seq2SeqGRU(nn.Module):
    def __init__(self, dims: int, hidden: int, target: int, decoder: str = "learned", residual: bool = True) -> None:
        super().__init__()
        self.dims, self.hidden, self.target, self.decoder_kind, self.residual = dims, hidden, target, decoder, residual
        self.cell = nn.GRUCell(dims, hidden)
        self.decoder_cell = self.cell
        if decoder == "fixed_weights":
            self.decoder_cell = nn.GRUCell(dims, hidden)
            for p in self.decoder_cell.parameters():
                p.requires_grad_(False)
        self.project = nn.Linear(hidden, dims)

    def encode(self, source: torch.Tensor) -> torch.Tensor:
        """(B, S, D) -> final encoder state (B, H)."""
        h = source.new_zeros(source.shape[0], self.hidden)
        for t in range(source.shape[1]):
            h = self.cell(source[:, t], h)
        return h

    def decode(self, state: torch.Tensor, last: torch.Tensor, steps: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """From the encoder state and the last source frame: predictions (B, T, D), states (B, T, H)."""
        frame, h = last, state
        outputs, states = [], []
        for _ in range(steps or self.target):
            h = self.decoder_cell(frame, state if self.decoder_kind == "fixed_state" else h)
            step = self.project(h)
            frame = frame + step if self.residual else step
            outputs.append(frame)
            states.append(h)
        return torch.stack(outputs, 1), torch.stack(states, 1)

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        """(B, S, D) -> predicted next frames (B, target, D)."""
        state = self.encode(source)
        return self.decode(state, source[:, -1])[0]

    @torch.no_grad()
    def embed(self, source: torch.Tensor) -> dict[str, torch.Tensor]:
        """Embeddings of windows: encoder final state, mean decoder state, and their concatenation."""
        state = self.encode(source)
        predicted, states = self.decode(state, source[:, -1])
        decoder = states.mean(1)
        return {"encoder": state, "decoder": decoder, "both": torch.cat([state, decoder], 1), "predicted": predicted}

    @torch.no_grad()
    def infer(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Registry serving: {"source": (B, S, D)} -> predicted frames (B, target, D)."""
        return self(inputs["source"].float())


@register_model("seq2seq_gru")
def seq2seq_gru(*, dims: int, hidden: int = 1024, target: int = 25, decoder: str = "learned",
                residual: bool = True) -> nn.Module:
    """GRU seq2seq on D-channel sequences (reference: one 1024-unit cell, target 25 frames)."""
    if decoder not in DECODERS:
        raise ActionopsError(f"unknown decoder {decoder!r}", f"choose one of {', '.join(DECODERS)}")
    if dims < 1 or hidden < 1 or target < 1:
        raise ActionopsError(f"seq2seq_gru needs dims, hidden and target >= 1 (got {dims}, {hidden}, {target})")
    return Seq2SeqGRU(int(dims), int(hidden), int(target), decoder, bool(residual))


class SequenceDiscriminator(nn.Module):
    """A GRU that reads a (B, T, D) sequence and returns one real-vs-predicted logit per sequence."""

    def __init__(self, dims: int, hidden: int = 128) -> None:
        super().__init__()
        self.gru = nn.GRU(dims, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.gru(x)[1][-1])[:, 0]


@register_model("sequence_discriminator")
def sequence_discriminator(*, dims: int, hidden: int = 128) -> nn.Module:
    """GRU discriminator of the subject-86 variant (methods.md §4: two of them in the loss)."""
    if dims < 1 or hidden < 1:
        raise ActionopsError(f"sequence_discriminator needs dims and hidden >= 1 (got {dims}, {hidden})")
    return SequenceDiscriminator(int(dims), int(hidden))


def adversarial_losses(discriminators: nn.ModuleList, source: torch.Tensor, target: torch.Tensor,
                       predicted: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two GRU discriminators of the subject-86 variant: one judges the predicted frames alone,
    the other the source followed by them (is this continuation of this source real?).
    Returns (generator loss: both fooled, discriminator loss: real vs predicted, predictions
    detached), both binary cross-entropy with logits summed over the two discriminators."""
    bce = nn.functional.binary_cross_entropy_with_logits
    fake = (predicted, torch.cat([source, predicted], 1))
    real = (target, torch.cat([source, target], 1))
    generator = sum(bce(d(f), torch.ones(len(f), device=f.device)) for d, f in zip(discriminators, fake))
    critic = sum(bce(d(r), torch.ones(len(r), device=r.device)) + bce(d(f.detach()), torch.zeros(len(f), device=f.device))
                 for d, r, f in zip(discriminators, real, fake))
    return generator, critic
