"""pytorch/examples' VAE (vae/main.py) as users run it, on Fashion-MNIST: the reference for bench/bench_vae.py.

The model, loss, optimiser, batch size, data pipeline and train/test loop are the example's, line for line:
MLP 784-400-20, BCE summed over pixels + KL (Kingma & Welling 2014, appendix B), Adam lr 1e-3, batch 128,
torchvision dataset + ToTensor() + DataLoader (no workers on CPU, as the example), a test pass and a reconstruction
and a sample image saved after every epoch. The only changes: FashionMNIST instead of MNIST, read offline from
--root (bench_vae.py builds torchvision's ROOT/FashionMNIST/raw/ layout), and a JSON summary line at the end.

    python bench/vae_reference.py --root /tmp/fmnist --epochs 10 --results /tmp/vae-results
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.utils.data
from torch import nn, optim
from torch.nn import functional as F
from torchvision import datasets, transforms
from torchvision.utils import save_image

parser = argparse.ArgumentParser(description="VAE Fashion-MNIST Example (pytorch/examples vae/main.py)")
parser.add_argument(
    "--batch-size", type=int, default=128, metavar="N", help="input batch size for training (default: 128)"
)
parser.add_argument("--epochs", type=int, default=10, metavar="N", help="number of epochs to train (default: 10)")
parser.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (default: 1)")
parser.add_argument("--log-interval", type=int, default=10, metavar="N", help="how many batches to wait before logging")
parser.add_argument("--root", required=True, help="folder holding FashionMNIST/raw/ (torchvision's layout)")
parser.add_argument("--results", default="results", help="where the example saves its images")
args = parser.parse_args()

torch.manual_seed(args.seed)
device = torch.device("cpu")
kwargs: dict = {}  # the example passes num_workers=1, pin_memory=True only on CUDA
t_start = time.perf_counter()

train_loader = torch.utils.data.DataLoader(
    datasets.FashionMNIST(args.root, train=True, download=False, transform=transforms.ToTensor()),
    batch_size=args.batch_size,
    shuffle=True,
    **kwargs,
)
test_loader = torch.utils.data.DataLoader(
    datasets.FashionMNIST(args.root, train=False, transform=transforms.ToTensor()),
    batch_size=args.batch_size,
    shuffle=False,
    **kwargs,
)


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


model = VAE().to(device)
optimizer = optim.Adam(model.parameters(), lr=1e-3)


# Reconstruction + KL divergence losses summed over all elements and batch
def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    # see Appendix B from VAE paper:
    # Kingma and Welling. Auto-Encoding Variational Bayes. ICLR, 2014
    # https://arxiv.org/abs/1312.6114
    # 0.5 * sum(1 + log(sigma^2) - mu^2 - sigma^2)
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


def train(epoch):
    model.train()
    train_loss = 0
    for batch_idx, (data, _) in enumerate(train_loader):
        data = data.to(device)
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data)
        loss = loss_function(recon_batch, data, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
        if batch_idx % args.log_interval == 0:
            print(
                f"Train Epoch: {epoch} [{batch_idx * len(data)}/{len(train_loader.dataset)} ({100.0 * batch_idx / len(train_loader):.0f}%)]\tLoss: {loss.item() / len(data):.6f}"
            )
    print(f"====> Epoch: {epoch} Average loss: {train_loss / len(train_loader.dataset):.4f}")


def test(epoch):
    model.eval()
    test_loss = 0
    with torch.no_grad():
        for i, (data, _) in enumerate(test_loader):
            data = data.to(device)
            recon_batch, mu, logvar = model(data)
            test_loss += loss_function(recon_batch, data, mu, logvar).item()
            if i == 0:
                n = min(data.size(0), 8)
                comparison = torch.cat([data[:n], recon_batch.view(args.batch_size, 1, 28, 28)[:n]])
                save_image(
                    comparison.cpu(), os.path.join(args.results, "reconstruction_" + str(epoch) + ".png"), nrow=n
                )

    test_loss /= len(test_loader.dataset)
    print(f"====> Test set loss: {test_loss:.4f}")
    return test_loss


if __name__ == "__main__":
    os.makedirs(args.results, exist_ok=True)
    t_loop = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        train(epoch)
        test_loss = test(epoch)
        with torch.no_grad():
            sample = torch.randn(64, 20).to(device)
            sample = model.decode(sample).cpu()
            save_image(sample.view(64, 1, 28, 28), os.path.join(args.results, "sample_" + str(epoch) + ".png"))
    end = time.perf_counter()
    print(
        json.dumps(
            {
                "reference_test_loss": test_loss,
                "loop_seconds": end - t_loop,
                "script_seconds": end - t_start,
                "threads": torch.get_num_threads(),
            }
        )
    )
