"""The distributed half of tests/test_ddp.py: run in 2 CPU processes (gloo) by

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ddp_worker.py OUT

it trains what the tests then compare with one process, and writes the results under OUT: one launch for all of
it, as starting processes that import torch is what costs here. Each Trainer.fit below makes the process group
and destroys it (the CLI test covers api.train, which keeps one group for its whole run).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

import nnzoo
from nnzoo import Callback, Model, TrainConfig, Trainer, checkpoint, create_model, load_dataset

# In fp32: bf16 autocast (on CPUs that have it) rounds each rank's partial gradient sums, which alone moves the
# losses of 1 and 2 processes apart by ~2e-3 relative. One thread, as each of 2 processes has on 2 cores (and tiny
# steps on a busy machine run far faster on one thread than on two).
FP32 = {"amp": False, "num_threads": 1}
EPOCHS = 4


class ProbeLoss(Callback):
    """After every step, the loss of the current weights on a fixed batch: a per-step loss curve that needs no
    collective (the weights are the same on every rank, and callbacks run on rank 0 only)."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.batch: tuple[torch.Tensor, torch.Tensor] | None = None

    def on_train_begin(self, trainer: Trainer) -> None:
        data = load_dataset("digits", val_size=0.1)
        self.batch = next(iter(trainer.batches(data.train.subset(slice(0, 128)), train=False)))

    def on_batch_end(self, trainer: Trainer, step: int, steps: int) -> None:
        with torch.no_grad():
            self.losses.append(F.cross_entropy(trainer.model(self.batch[0]), self.batch[1]).item())


class StopAfter(Callback):
    """Stop cleanly after epoch ``n`` (set on rank 0; the trainer tells the other ranks)."""

    def __init__(self, n: int):
        self.n = n

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict) -> None:
        if epoch + 1 == self.n:
            trainer.stop_training = True


class TwoHeads(Model):
    """Two classifiers on the same pixels, each with its own optimizer and backward in a train_step of its own:
    the shape of a GAN's step without its random noise, so two processes must match one."""

    task = "classification"

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(64, 10)
        self.b = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))

    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"a": list(self.a.parameters()), "b": list(self.b.parameters())}

    def _losses(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        return F.cross_entropy(self.a(x.flatten(1)), y), F.cross_entropy(self.b(x.flatten(1)), y)

    def compute_loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        la, lb = self._losses(batch)
        return {"loss": la + lb, "loss_a": la, "loss_b": lb}

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor], trainer: Trainer) -> dict[str, torch.Tensor]:
        la, lb = self._losses(batch)
        trainer.optimize(la, "a")
        trainer.optimize(lb, "b")
        return {"loss": (la + lb).detach(), "loss_a": la.detach(), "loss_b": lb.detach()}


def two_heads(seed: int = 0) -> tuple[Trainer, list[dict]]:
    data = load_dataset("digits", val_size=0.1, limit_train=320)
    torch.manual_seed(seed)
    # SGD, not Adam: Adam's step hardly changes when every gradient is scaled, so it would hide gradients summed
    # over the ranks instead of averaged (measured, summed: final weights off by 5e-5 with Adam, 0.5 with SGD).
    cfg = TrainConfig(epochs=2, batch_size=32, optimizer="sgd", lr=0.1, momentum=0.9, **FP32)
    trainer = Trainer(TwoHeads(), cfg, spec=data.spec, progress=False)
    return trainer, trainer.fit(data.train, data.val)


def small_gan() -> Trainer:
    """An MLP GAN (batch norm in its generator) for a few steps: two optimizers, D frozen in G's step, noise."""
    data = load_dataset("digits", val_size=0.1, limit_train=256)
    torch.manual_seed(0)
    model = create_model("gan", data.spec, latent=8, g_hidden=[32, 32], d_hidden=[32], judge="none")
    cfg = TrainConfig(epochs=2, max_steps=6, batch_size=32, optimizer="adam", lr=2e-4, betas=[0.5, 0.999], **FP32)
    trainer = Trainer(model, cfg, spec=data.spec, progress=False)
    trainer.fit(data.train, data.val)
    return trainer


def mlp_run(run_dir: Path, *, stop: int | None = None, resume: bool = False, dropout: float = 0.0,
            callbacks: list[Callback] = (), seen: list[list[float]] | None = None) -> Trainer:  # fmt: skip
    """digits-mlp's model and optimizer (Adam 2e-3, cosine) on 320 training images: 10 steps of the global batch
    32 per epoch, 40 in all. A checkpoint in ``run_dir`` every epoch; ``stop`` after that epoch; ``resume`` from
    its last checkpoint. With ``dropout`` the ranks' random streams matter, and a resumed run must continue each.
    ``seen`` gets, per training step, one number per sample this process trained on (the sum of its pixels)."""
    data = load_dataset("digits", val_size=0.1, limit_train=320)
    torch.manual_seed(0)
    model = create_model("mlp", data.spec, hidden=[128, 64], dropout=dropout)
    if seen is not None:
        model.register_forward_pre_hook(lambda m, args: seen.append(args[0].flatten(1).sum(1).tolist())
                                        if m.training and torch.is_grad_enabled() else None)  # fmt: skip
    cfg = TrainConfig(epochs=EPOCHS, batch_size=32, optimizer="adam", lr=2e-3, schedule="cosine", **FP32)
    trainer = Trainer(model, cfg, run_dir=run_dir, spec=data.spec, progress=False,
                      callbacks=[*callbacks, *([StopAfter(stop)] if stop else [])])  # fmt: skip
    if resume:
        trainer.load_state_dict(checkpoint.load(run_dir / "checkpoints" / "last.pt"))
    trainer.fit(data.train, data.val)
    return trainer


def plain_fit(form: str = "arrays") -> Trainer:
    """A plain nn.Sequential through nnzoo.fit on 320 digits: as arrays (nnzoo shards them), as a DataLoader with
    a DistributedSampler (the user's own sharding), or as a DataLoader without one (refused in 2 processes)."""
    from sklearn.datasets import load_digits
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    x, y = load_digits(return_X_y=True)
    x, y = x[:320] / 16, y[:320]
    data: object = (x, y)
    if form != "arrays":
        ds = TensorDataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y))
        world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])  # fit makes the process group later
        sampler = DistributedSampler(ds, world, rank, shuffle=True, seed=0) if form == "sampler" else None
        data = DataLoader(ds, batch_size=16, sampler=sampler)
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    return nnzoo.fit(module, data, loss="cross_entropy", epochs=2, batch_size=32, optimizer="sgd", lr=0.1,
                     progress=False, **FP32)  # fmt: skip


def main(out: Path) -> None:
    rank = int(os.environ["RANK"])
    probe, seen = ProbeLoss(), []
    trainer = mlp_run(out / "ddp", callbacks=[probe], seen=seen)
    assert not dist.is_initialized()  # fit made the process group and destroyed it
    (out / f"ddp-seen-rank{rank}.json").write_text(json.dumps(seen))
    if rank == 0:
        (out / "ddp-probe.json").write_text(json.dumps({"probe": probe.losses, "history": trainer.history}))
    # Checkpoints across process counts: one cut here, finished in one process by the test; one cut in one
    # process by the test before this launch, finished here.
    mlp_run(out / "ddp-cut", stop=2)
    mlp_run(out / "single-cut", resume=True)
    mlp_run(out / "drop-full", dropout=0.3)
    mlp_run(out / "drop-cut", dropout=0.3, stop=2)
    mlp_run(out / "drop-cut", dropout=0.3, resume=True)
    trainer, history = two_heads()
    torch.save({"state": trainer.model.state_dict(), "history": history}, out / f"two-heads-rank{rank}.pt")
    plain = plain_fit()
    torch.save({"state": plain.model.state_dict(), "history": plain.history}, out / f"plain-rank{rank}.pt")
    sampled = plain_fit("sampler")
    refused = ""
    try:
        plain_fit("loader")
    except nnzoo.UserError as e:
        refused = str(e)
    if rank == 0:
        (out / "plain-loaders.json").write_text(json.dumps({"sampled": sampled.history, "refused": refused}))
    gan = small_gan()
    torch.save({"state": gan.model.state_dict(), "history": gan.history, "steps": gan.global_step},
               out / f"gan-rank{rank}.pt")  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]))
