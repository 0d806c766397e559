"""The classic PyTorch CNN example as users copy it, kept as the benchmark's reference (not part of nnzoo).

torchvision dataset + ToTensor + Normalize, DataLoader(batch_size=64, shuffle=True, num_workers=2), SimpleCNN,
cross-entropy, SGD lr 0.01 without momentum, then accuracy on the test set. One fix only: the flatten size is
64*5*5 (the widely copied 64*6*6 crashes on 28x28 input). Prints one JSON line with the result.

    python bench/reference_simple_cnn.py --root DIR [--dataset fashion-mnist|mnist] [--epochs 10]

DIR holds torchvision's layout (DIR/FashionMNIST/raw/... or DIR/MNIST/raw/...); bench/simple_cnn.py builds it.
"""

import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision import datasets, transforms


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(64 * 5 * 5, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "mnist"])
    p.add_argument("--epochs", type=int, default=10)
    args = p.parse_args()
    start = time.perf_counter()
    torch.manual_seed(0)
    if args.dataset == "mnist":
        cls, mean, std = datasets.MNIST, 0.1307, 0.3081
    else:
        cls, mean, std = datasets.FashionMNIST, 0.2860, 0.3530
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])
    train = cls(args.root, train=True, download=False, transform=transform)
    test = cls(args.root, train=False, download=False, transform=transform)
    train_loader = torch.utils.data.DataLoader(train, batch_size=64, shuffle=True, num_workers=2)
    test_loader = torch.utils.data.DataLoader(test, batch_size=1000, num_workers=2)
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        model.train()
        for data, target in train_loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(data), target)
            loss.backward()
            optimizer.step()
    train_seconds = time.perf_counter() - t0
    model.eval()
    correct = total_loss = 0.0
    with torch.no_grad():
        for data, target in test_loader:
            out = model(data)
            total_loss += F.cross_entropy(out, target, reduction="sum").item()
            correct += (out.argmax(1) == target).sum().item()
    n = len(test)
    print(
        json.dumps(
            {
                "accuracy": correct / n,
                "loss": total_loss / n,
                "train_seconds": train_seconds,
                "wall_seconds": time.perf_counter() - start,
            }
        )
    )


if __name__ == "__main__":
    main()
