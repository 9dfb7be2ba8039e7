"""Architectures: ResNet-18 size and embedding, the small CNN, input standardisation, for_dataset."""
import numpy as np
import pytest
import torch

import activebatch as ab
from activebatch.learning.models import CNN, MLP, EmbeddingModel, LinearHead, ResNet18, Standardize, for_dataset


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_resnet18_parameter_count_and_embedding():
    m = ResNet18(in_channels=3, n_classes=10)
    assert n_params(m) == 11_173_962          # the CIFAR ResNet-18 of the BADGE paper's code
    assert isinstance(m, EmbeddingModel) and m.embedding_dim == 512
    assert isinstance(m.head, torch.nn.Linear) and m.head.in_features == 512 and m.head.out_features == 10
    # 3x3 stride-1 stem, no max-pool: the first stage keeps the 32x32 resolution
    assert m.conv1.kernel_size == (3, 3) and m.conv1.stride == (1, 1)
    assert not any(isinstance(mod, torch.nn.MaxPool2d) for mod in m.modules())
    assert [len(layer) for layer in (m.layer1, m.layer2, m.layer3, m.layer4)] == [2, 2, 2, 2]
    m.eval()
    x = torch.randn(2, 3, 32, 32)
    z = m.embed(x)
    assert z.shape == (2, 512)
    torch.testing.assert_close(m(x), m.head(z))


def test_resnet18_grey_and_flat_inputs():
    m = ResNet18(in_channels=1, n_classes=47).eval()
    assert n_params(m) == 11_173_962 - 2 * 64 * 9 + 37 * 513    # 1 input channel, 47 classes
    assert m.embed(torch.randn(2, 1, 28, 28)).shape == (2, 512)
    assert m(torch.randn(2, 784)).shape == (2, 47)            # flat rows become 1x28x28 images


def test_cnn_shapes_and_dropout():
    m = CNN(in_channels=3, n_classes=10, dropout=0.5)
    x = torch.randn(4, 3, 32, 32)
    m.eval()
    assert m.embed(x).shape == (4, 128)
    torch.testing.assert_close(m.embed(x), m.embed(x))
    m.train()
    assert not torch.equal(m.embed(x), m.embed(x))          # dropout active before the head
    assert CNN(1, 10).eval()(torch.randn(5, 784)).shape == (5, 10)
    assert CNN(1, 10, input_shape=(1, 8, 8)).eval()(torch.randn(5, 64)).shape == (5, 10)
    with pytest.raises(ValueError, match="input_shape"):
        CNN(3, 10)(torch.randn(2, 100))
    with pytest.raises(ValueError, match="dropout"):
        CNN(1, 10, dropout=1.0)


def test_standardize_per_channel():
    mean, std = np.array([10.0, 20.0, 30.0]), np.array([2.0, 4.0, 5.0])
    s = Standardize(mean, std)
    x = torch.rand(2, 3, 4, 4) * 255
    m, sd = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
    want = (x - m[:, None, None]) / sd[:, None, None]
    torch.testing.assert_close(s(x), want)
    torch.testing.assert_close(s(x.reshape(2, -1)), want.reshape(2, -1))   # flat, channel-major
    with pytest.raises(ValueError):
        Standardize([1.0], [0.0])


def test_mlp_standardises_uint8_inputs_and_reset_keeps_statistics():
    torch.manual_seed(0)
    m = MLP(12, 3, embedding_dim=8, mean=[100.0], std=[50.0]).eval()
    plain = MLP(12, 3, embedding_dim=8).eval()
    plain.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("input_norm")})
    x = torch.randint(0, 256, (5, 12), dtype=torch.uint8)
    torch.testing.assert_close(m(x), plain((x.float() - 100.0) / 50.0))
    m.reset_parameters()
    assert float(m.input_norm.mean) == 100.0 and float(m.input_norm.std) == 50.0


def test_for_dataset_follows_the_data():
    digits = ab.datasets.load("digits")
    mlp = for_dataset(digits, "mlp")
    assert isinstance(mlp, MLP) and mlp.embedding_dim == 256          # image width of the paper
    cnn = for_dataset(digits, "cnn", dropout=0.1)
    assert cnn.input_shape == (1, 8, 8) and cnn.head.out_features == 10
    kropt = ab.datasets.load("kropt")
    assert for_dataset(kropt, "mlp").embedding_dim == 1024             # tabular width of the paper
    with pytest.raises(ValueError, match="image"):
        for_dataset(kropt, "resnet18")
    with pytest.raises(ValueError, match="resnet18"):
        for_dataset(kropt, "vgg")


def test_cnn_learns_digits():
    torch.manual_seed(0)
    d = ab.datasets.load("digits")
    learner = ab.Learner(for_dataset(d, "cnn"), lr=1e-3, max_epochs=8, device="cpu")
    learner.fit(d.X_train[:600], d.y_train[:600], seed=0)
    assert learner.score(d.X_test, d.y_test) > 0.8


def test_resnet18_trains_in_the_learner():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(12, 3, 32, 32), dtype=np.uint8)
    y = np.arange(12) % 3
    model = ResNet18(3, 3, dropout=0.2, mean=[120.0] * 3, std=[60.0] * 3)
    learner = ab.Learner(model, lr=1e-3, max_epochs=1, batch_size=6, device="cpu")
    learner.fit(X, y, seed=0)
    P, Z = learner.outputs(X)
    assert P.shape == (12, 3) and Z.shape == (12, 512)


def test_linear_head():
    m = LinearHead(6, 4).eval()
    x = torch.randn(3, 6)
    torch.testing.assert_close(m.embed(x), x)
    assert m.embedding_dim == 6 and m(x).shape == (3, 4)


def test_cnn_pools_before_relu_with_the_same_values_and_gradients():
    """CNN.embed pools before its ReLUs: bit for bit the outputs and gradients of ReLU then pool
    (including windows of ties and windows whose maximum is negative)."""
    from torch.nn import functional as F

    torch.manual_seed(0)
    net = CNN(1, 10, embedding_dim=16)
    x = torch.randn(8, 1, 28, 28)
    x[:, :, :4, :4] = 0.0        # windows of equal values
    x[:, :, 4:8, :] = -1.0       # windows whose maximum is negative

    def relu_then_pool(x):
        h = F.max_pool2d(F.relu(net.conv1(x)), 2)
        h = F.max_pool2d(F.relu(net.conv2(h)), 2)
        return F.relu(net.fc(torch.flatten(F.adaptive_avg_pool2d(h, 4), 1)))

    grads = []
    for f in (net.embed, relu_then_pool):
        net.zero_grad()
        out = f(x)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads.append((out.detach(), [p.grad.clone() for p in net.parameters() if p.grad is not None]))
    assert torch.equal(grads[0][0], grads[1][0])
    assert all(torch.equal(a, b) for a, b in zip(grads[0][1], grads[1][1]))


def test_the_learner_keeps_convolution_weights_channels_last():
    learner = ab.Learner(CNN(1, 10, embedding_dim=16), device="cpu")
    conv = learner.model.conv2.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    learner.fit(np.random.default_rng(0).normal(size=(20, 784)).astype(np.float32), np.arange(20) % 10,
                seed=0)
    assert learner.model.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    mlp = ab.Learner(MLP(4, 3), device="cpu").model
    assert all(p.is_contiguous() for p in mlp.parameters())
