"""The classic SimpleCNN recipe with PyTorch Lightning, as a Lightning user writes it (not part of nnzoo).

A LightningModule holding the example's network (conv 32, conv 64, fc 128, fc 10; ReLU and max-pool), its
``training_step`` returning the cross-entropy, ``configure_optimizers`` returning SGD lr 0.01 without momentum;
torchvision's FashionMNIST with ToTensor + Normalize in a ``DataLoader(batch_size=64, shuffle=True,
num_workers=2)``; ``Trainer(max_epochs=N, accelerator="cpu")`` without its progress bar, checkpoints or logger
(they cost time and nnzoo's run writes its own); then ``trainer.test``. Prints one JSON line.

    python bench/reference_lightning.py --root DIR [--epochs 10]    # DIR: torchvision's layout, see simple_cnn.py
"""

import argparse
import json
import time

import lightning as L
import torch
import torch.nn.functional as F
from reference_simple_cnn import Net  # the same network as the plain example
from torchvision import datasets, transforms


class LitNet(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = Net()

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def test_step(self, batch, batch_idx):
        x, y = batch
        out = self.net(x)
        self.log("test_loss", F.cross_entropy(out, y))
        self.log("test_accuracy", (out.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--epochs", type=int, default=10)
    args = p.parse_args()
    start = time.perf_counter()
    L.seed_everything(0, verbose=False)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.2860,), (0.3530,))])
    train = datasets.FashionMNIST(args.root, train=True, download=False, transform=transform)
    test = datasets.FashionMNIST(args.root, train=False, download=False, transform=transform)
    trainer = L.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=1, enable_progress_bar=False,
                        enable_checkpointing=False, logger=False, enable_model_summary=False)  # fmt: skip
    model = LitNet()
    t0 = time.perf_counter()
    trainer.fit(model, torch.utils.data.DataLoader(train, batch_size=64, shuffle=True, num_workers=2))
    train_seconds = time.perf_counter() - t0
    (result,) = trainer.test(model, torch.utils.data.DataLoader(test, batch_size=1000, num_workers=2), verbose=False)
    print(json.dumps({"accuracy": result["test_accuracy"], "loss": result["test_loss"], "train_seconds": train_seconds,
                      "wall_seconds": time.perf_counter() - start, "lightning": L.__version__}))  # fmt: skip


if __name__ == "__main__":
    main()
