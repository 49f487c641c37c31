#!/usr/bin/python3
"""Builds the ONNX fixtures of nn/onnx's tests with PyTorch, and their references.

Run with Debian's python3 and its python3-torch (1.13): `make onnx-fixtures`, or
    /usr/bin/python3 nn/onnx/testdata/make_fixtures.py
from the repository root. The Go tests never need PyTorch: they read the files written
here, which are committed.

For each model it writes NAME.onnx (exported from float32 weights with a dynamic batch
axis, random initialisation with a fixed seed) and NAME.json: a fresh random input batch,
every output of the model on it, and the vector-Jacobian product of one output w.r.t. the
input for a random cotangent. The references are computed in float64 (model.double() on
the same weights), so that they carry no float32 rounding of their own.
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = 4


class MLPDecoder(nn.Module):
    """A VAE-style decoder z → image: Linear, LeakyReLU(0.2), BatchNorm1d, ELU, Sigmoid,
    and a view with the batch size read from the input (Shape/Gather/Concat/Reshape)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 32)
        self.bn1 = nn.BatchNorm1d(32)
        self.fc2 = nn.Linear(32, 48)
        self.fc3 = nn.Linear(48, 49)

    def forward(self, z):
        h = self.bn1(F.leaky_relu(self.fc1(z), 0.2))
        h = F.elu(self.fc2(h), alpha=0.7)
        x = torch.sigmoid(self.fc3(h))
        return x.view(z.size(0), 1, 7, 7)


class Generator(nn.Module):
    """A DCGAN-style generator with kernel sizes unlike the 4/2/1 stack: 3/2/0, a dilated
    3-tap kernel with output_padding, and a 4×6 kernel with unequal padding."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 24 * 3 * 3)
        self.up1 = nn.ConvTranspose2d(24, 16, 3, stride=2, padding=0)                   # 3 → 7
        self.bn1 = nn.BatchNorm2d(16)
        self.up2 = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=2, output_padding=1, dilation=2)  # 7 → 14
        self.up3 = nn.ConvTranspose2d(8, 1, (4, 6), stride=2, padding=(1, 2))           # 14 → 28

    def forward(self, z):
        h = F.relu(self.fc(z)).view(-1, 24, 3, 3)
        h = F.relu(self.bn1(self.up1(h)))
        h = F.leaky_relu(self.up2(h), 0.2)
        return torch.tanh(self.up3(h))


class Classifier(nn.Module):
    """A conv classifier: Conv + ReLU + MaxPool (3/2/1, ceil mode), a strided dilated
    non-square Conv + AveragePool (count_include_pad off), Flatten, Gemm; two outputs, the
    log-probabilities (LogSoftmax) and the probabilities (Softmax)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 3, padding=1)
        self.c2 = nn.Conv2d(6, 8, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2))
        self.fc = nn.Linear(8 * 3 * 2, 10)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.c1(x)), 3, stride=2, padding=1, ceil_mode=True)  # 12 → 7
        h = torch.tanh(self.c2(h))                                                      # 7×7 → 4×5
        h = F.avg_pool2d(h, 2, stride=(1, 2), padding=(0, 1), count_include_pad=False)  # → 3×3
        h = h[:, :, :, :2]                                                              # Slice → 3×2
        logits = self.fc(torch.flatten(h, 1))
        return F.log_softmax(logits, dim=1), F.softmax(logits, dim=-1)


class Reward(nn.Module):
    """A scalar reward model: Conv, exact GELU (the Erf pattern), GlobalAveragePool,
    ReduceMean/ReduceSum, Concat, Transpose, Unsqueeze/Squeeze and the elementwise ops
    Add, Sub, Mul, Div, Neg, Pow, Sqrt, Exp, Log, Softplus, Tanh. (The transpose of the
    weight w is folded by the exporter; the permute of h is a Transpose node.)"""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 4, 3, padding=1)
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 1)
        self.w = nn.Parameter(torch.randn(4, 4) * 0.5)

    def forward(self, x):
        h = F.gelu(self.c1(x))                                   # [B, 4, 6, 5]
        g = F.adaptive_avg_pool2d(h, 1).flatten(1)               # GlobalAveragePool → [B, 4]
        m = h.mean(dim=(2, 3))                                   # ReduceMean → [B, 4]
        q = h.permute(0, 2, 3, 1)                                # Transpose → [B, 6, 5, 4]
        s = (q * q).sum(dim=2).mean(dim=1)                       # ReduceSum, ReduceMean
        t = torch.matmul(s, self.w.t())                          # Transpose of a weight, MatMul
        f = torch.cat([g - m * 0.5, t / (1.0 + s)], dim=1)       # Concat → [B, 8]
        f = F.gelu(self.fc1(f))
        r = self.fc2(f).squeeze(1)                               # [B]
        e = torch.sqrt(s.pow(2).sum(dim=1) + 0.5) - torch.log(1.0 + torch.exp(-m.pow(3).mean(dim=1)))
        r = r + 0.3 * F.softplus(-e) + torch.tanh(g.sum(dim=1)) / 3.0
        return r.unsqueeze(1)                                    # [B, 1]


MODELS = [
    # name, module, input name, input shape (without batch), output names, opset, VJP output
    ("mlp_decoder", MLPDecoder, "z", (8,), ["x"], 13, "x"),
    ("generator", Generator, "z", (12,), ["x"], 17, "x"),
    ("classifier", Classifier, "x", (1, 12, 12), ["logp", "probs"], 14, "logp"),
    ("reward", Reward, "x", (2, 6, 5), ["r"], 17, "r"),
]


def randomise_norms(model):
    """Gives every batch norm non-trivial running statistics and affine parameters."""
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            with torch.no_grad():
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_(1, 0.3)
                m.bias.normal_(0, 0.3)


def flat(t):
    """The values of t; float32 tensors exactly, float64 ones to 10 significant digits
    (ample for the 1e-4 comparisons, and it keeps the files small)."""
    if t.dtype == torch.float32:
        return [float(v) for v in t.detach().reshape(-1).tolist()]
    return [float("%.10g" % v) for v in t.detach().reshape(-1).tolist()]


def build(name, cls, in_name, in_shape, out_names, opset, vjp_out, seed):
    torch.manual_seed(seed)
    model = cls()
    randomise_norms(model)
    model.eval()
    x32 = torch.randn(BATCH, *in_shape)
    path = os.path.join(HERE, name + ".onnx")
    torch.onnx.export(
        model, x32, path,
        input_names=[in_name], output_names=out_names,
        dynamic_axes={n: {0: "batch"} for n in [in_name] + out_names},
        opset_version=opset, do_constant_folding=True,
    )
    # float64 references on the same weights; the input is the float32 batch, widened.
    ref = cls()
    ref.load_state_dict(model.state_dict())
    ref = ref.double().eval()
    x = x32.double().requires_grad_(True)
    outs = ref(x)
    if not isinstance(outs, tuple):
        outs = (outs,)
    k = out_names.index(vjp_out)
    # The cotangent is drawn in float32 (the values the Go side feeds) and widened.
    cot = torch.randn(outs[k].shape, generator=torch.Generator().manual_seed(seed + 1)).double()
    (grad,) = torch.autograd.grad(outs[k], x, cot)
    doc = {
        "model": name + ".onnx",
        "torch": torch.__version__,
        "opset": opset,
        "input": {"name": in_name, "shape": list(x.shape), "data": flat(x32)},
        "outputs": [{"name": n, "shape": list(o.shape), "data": flat(o)} for n, o in zip(out_names, outs)],
        "vjp": {"output": vjp_out, "cotangent": flat(cot.float()), "grad": flat(grad)},
    }
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    print(f"{name}: {os.path.getsize(path)} bytes of ONNX, output {tuple(outs[0].shape)}")


def main():
    for i, m in enumerate(MODELS):
        build(*m, seed=1000 + i)


if __name__ == "__main__":
    sys.exit(main())
