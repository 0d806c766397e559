from __future__ import annotations

import pytest
import torch

from nnzoo.data import dataset_spec
from nnzoo.errors import IncompatibleData, UserError
from nnzoo.models import MODELS, Classifier, create_model
from nnzoo.summary import summarize


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_every_model_trains_a_step_with_gradients_everywhere(name: str, dataset: str) -> None:
    spec = dataset_spec(dataset)
    torch.manual_seed(0)
    try:
        model = create_model(name, spec)
    except IncompatibleData:  # a language model, say: its family's tests train it on its own data
        pytest.skip(f"{name} does not take {dataset}")
    if not isinstance(model, Classifier):
        pytest.skip("not a classifier: its family's tests check it (test_generative.py for autoencoders and GANs)")
    x = torch.randn(4, *spec.input_shape)
    y = torch.randint(0, spec.num_classes, (4,))
    out = model.compute_loss((x, y))
    assert model(x).shape == (4, spec.num_classes)
    assert torch.isfinite(out["loss"]) and 0 <= out["accuracy"] <= 1
    out["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no finite gradient for {missing}"
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


def test_simple_cnn_flattens_64x5x5_on_28x28_and_64x6x6_on_32x32() -> None:
    mnist = create_model("simple-cnn", dataset_spec("mnist"))
    assert mnist.classifier[1].in_features == 64 * 5 * 5  # not the widely copied 64*6*6
    cifar = create_model("simple-cnn", dataset_spec("cifar10"))
    assert cifar.classifier[1].in_features == 64 * 6 * 6
    assert sum(p.numel() for p in mnist.parameters()) == 225_034


def test_simple_cnn_layers_are_the_classic_example() -> None:
    m = create_model("simple-cnn", dataset_spec("mnist"))
    convs = [layer for layer in m.features if isinstance(layer, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(1, 32, (3, 3)), (32, 64, (3, 3))]
    # pool before ReLU: they commute exactly (tested below); the first conv is ImageConv2d, a Conv2d
    assert [type(layer).__name__ for layer in m.features] == ["ImageConv2d", "MaxPool2d", "ReLU", "Conv2d",
                                                              "MaxPool2d", "ReLU"]  # fmt: skip
    x = torch.randn(4, 1, 28, 28)
    conv_first = torch.nn.Sequential(*(m.features[i] for i in (0, 2, 1, 3, 5, 4)))  # conv -> ReLU -> pool
    torch.testing.assert_close(conv_first(x), m.features(x), rtol=0, atol=0)
    assert [layer.out_features for layer in m.classifier if isinstance(layer, torch.nn.Linear)] == [128, 10]


def test_input_too_small_names_the_minimum_size() -> None:
    with pytest.raises(UserError, match="simple-cnn needs input of at least 10x10 pixels.*images are 8x8"):
        create_model("simple-cnn", dataset_spec("digits"))
    with pytest.raises(UserError, match="lenet5 needs input of at least"):
        create_model("lenet5", dataset_spec("digits"), padding=0)


def test_model_arguments_are_checked() -> None:
    spec = dataset_spec("digits")
    m = create_model("mlp", spec, hidden=[32, 16, 8], activation="gelu", dropout=0.2, batch_norm=True)
    assert [layer.out_features for layer in m.net if isinstance(layer, torch.nn.Linear)] == [32, 16, 8, 10]
    with pytest.raises(UserError, match="has no argument 'hiden'; its arguments are: hidden"):
        create_model("mlp", spec, hiden=[3])
    with pytest.raises(UserError, match="Unknown activation 'relu6'"):
        create_model("mlp", spec, activation="relu6")
    with pytest.raises(UserError, match="Unknown model 'simple_cnn'. Did you mean 'simple-cnn'"):
        create_model("simple_cnn", spec)


def test_registry_rejects_duplicates() -> None:
    with pytest.raises(ValueError, match="already registered"):
        MODELS.add("mlp", lambda spec: None)


def test_summary_counts_flops_and_shapes() -> None:
    spec = dataset_spec("mnist")
    rows, params, flops = summarize(create_model("simple-cnn", spec), spec.input_shape)
    # 2 FLOPs per multiply-add: conv1 26*26*32*9, conv2 11*11*64*32*9, fc 1600*128 and 128*10
    assert flops == 2 * (26 * 26 * 32 * 9 + 11 * 11 * 64 * 32 * 9 + 1600 * 128 + 128 * 10)
    assert params == 225_034
    shapes = {r.name: r.output_shape for r in rows}
    assert shapes["features.5"] == (1, 64, 5, 5) and shapes["classifier.3"] == (1, 10)
