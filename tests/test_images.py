from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw

from nnzoo.data import dataset_spec
from nnzoo.images import load_images, to_model_input


def test_dark_on_light_drawing_becomes_a_centred_mnist_style_digit(tmp_path: Path) -> None:
    img = Image.new("L", (200, 120), 255)
    ImageDraw.Draw(img).rectangle([150, 10, 160, 100], fill=0)  # a "1" near the right edge, black on white
    x = to_model_input(img, dataset_spec("mnist"))
    assert x.shape == (1, 28, 28) and x.dtype == torch.uint8
    assert x[0, 0].max() == 0 and x[0, :, 0].max() == 0  # background is black now
    assert x.max() > 200  # strokes are white, as in MNIST
    cols = x[0].float().sum(0)
    centre = (cols * torch.arange(28)).sum() / cols.sum()
    assert 12 <= centre <= 15  # re-centred, not left at the edge
    rows = (x[0] > 40).any(1).nonzero().flatten()
    assert rows[0] >= 3 and rows[-1] <= 24  # fills the 20x20 box, with MNIST's margin


def test_colour_images_for_colour_models(tmp_path: Path) -> None:
    Image.new("RGB", (50, 40), (255, 0, 0)).save(tmp_path / "red.png")
    x = load_images([tmp_path / "red.png"], dataset_spec("cifar10"))
    assert x.shape == (1, 3, 32, 32) and x[0, 0].min() == 255 and x[0, 1].max() == 0
