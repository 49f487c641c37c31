#!/usr/bin/python3
"""Eager PyTorch peer of `osds train` (issue #17): the same sampler, objective and optimiser,
written the ordinary way, so that osds' iterations per second have something to stand beside.

What is matched (see train/sampler.go, train/trainer.go, kernels/adam.go, shaders/*.wgsl):
  network  temb(t) = L_t2(GELU(L_t1([sin(f t + phi), cos(f t + phi)]))),
           f = linspace(0.1, 100, H) constant, phi learned (normal init), H = 64
           h = L_s(z) + temb(t);  u = clip(L_3(GELU(L_2(GELU(L_1(GELU(h)))))), +-1e4)
           width 64, tanh-form GELU, PyTorch's default Linear init, L_3 zero (weight and bias)
  SDE      z_0 = 0, T = 100 steps, dt = 1/T, z_{k+1} = z_k + u dt + sqrt(sigma2 dt) eps,
           states detached; log p_F with the drift differentiable; log p_B the Brownian
           bridge N(z_k; (k/(k+1)) z_{k+1}, sigma2 dt k/(k+1)) for k >= 1
  loss     TB: 1/2 mean_b (log Z + log p_F - log p_B - log R)^2 (osds' tb_loss.wgsl has the 1/2)
  optimiser Adam (0.9, 0.999, eps 1e-8), lr 1e-3 for the drift and 0.1 for log Z, no gradient
           clipping (osds' trainer uses DefaultAdamConfig, MaxGradNorm = 0), batch 300,
           no exploration
  targets  25GMM (d = 2, sigma2 = 5) and Manywell (d = 32, sigma2 = 1), as in targets.wgsl

Prints one JSON line: {"impl": "pytorch", "target", "threads", "iters", "it_per_s", "torch", ...}.
"""
import argparse
import json
import math
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

LOG_2PI = math.log(2 * math.pi)
DRIFT_CLIP = 1e4  # kernels.DriftClip


def gelu(x):
    # osds' GELU is the tanh form (kernels/activation.go, shaders/activations.wgsl).
    return F.gelu(x, approximate="tanh")


# --- targets: log R(x) for a batch [B, d], as shaders/targets.wgsl computes it ---------------

GMM25_MEANS = torch.tensor([[a, b] for a in (-10.0, -5.0, 0.0, 5.0, 10.0)
                            for b in (-10.0, -5.0, 0.0, 5.0, 10.0)])


def log_r_gmm25(x):
    # Equal-weight mixture of 25 Gaussians N(mu_k, 0.3 I), means on {-10,-5,0,5,10}^2.
    sq = ((x[:, None, :] - GMM25_MEANS) ** 2).sum(-1)  # [B, 25]
    return torch.logsumexp(-sq / 0.6, dim=1) - math.log(25.0) - LOG_2PI - math.log(0.3)


def log_r_manywell(x):
    # 16 tilted double wells on the pairs (a, b) = (x_2k, x_2k+1): -a^4 + 6a^2 + a/2 - b^2/2.
    a, b = x[:, 0::2], x[:, 1::2]
    a2 = a * a
    return ((-a2 + 6.0) * a2 + 0.5 * a - 0.5 * b * b).sum(-1)


# name: (dimension, sigma2 = train.Target.Sigma2(), log R)
TARGETS = {"gmm25": (2, 5.0, log_r_gmm25), "manywell": (32, 1.0, log_r_manywell)}


# --- the drift network -----------------------------------------------------------------------

class Drift(nn.Module):
    def __init__(self, dim, width=64, harmonics=64):
        super().__init__()
        # Constant frequencies, computed in float64 then rounded, like kernels.Linspace.
        self.register_buffer("freq", torch.linspace(0.1, 100.0, harmonics, dtype=torch.float64).float())
        self.phase = nn.Parameter(torch.randn(harmonics))
        self.t1 = nn.Linear(2 * harmonics, width)
        self.t2 = nn.Linear(width, width)
        self.s = nn.Linear(dim, width)
        self.l1 = nn.Linear(width, width)
        self.l2 = nn.Linear(width, width)
        self.l3 = nn.Linear(width, dim)
        nn.init.zeros_(self.l3.weight)  # zero last layer: the untrained sampler is Brownian
        nn.init.zeros_(self.l3.bias)

    def time_embedding(self, t):
        # t: [T] -> [T, W], all steps at once (osds also runs this as one [T, .] chain).
        a = self.freq * t[:, None] + self.phase
        return self.t2(gelu(self.t1(torch.cat([torch.sin(a), torch.cos(a)], dim=-1))))

    def forward(self, z, temb_k):
        h = self.s(z) + temb_k
        u = self.l3(gelu(self.l2(gelu(self.l1(gelu(h))))))
        return torch.clamp(u, -DRIFT_CLIP, DRIFT_CLIP)


# --- one TB iteration ------------------------------------------------------------------------

def tb_iteration(net, log_z, opt, log_r, dim, sigma2, batch, steps):
    dt = 1.0 / steps
    var = sigma2 * dt
    std = math.sqrt(var)
    t = torch.arange(steps, dtype=torch.float64).mul(dt).float()  # t_k = k dt
    temb = net.time_embedding(t)

    z = torch.zeros(batch, dim)  # never requires grad: the states are detached
    log_pf = torch.zeros(batch)
    log_pb = torch.zeros(batch)
    c_f = -0.5 * dim * math.log(2 * math.pi * var)
    for k in range(steps):
        u = net(z, temb[k])
        z_next = z + u.detach() * dt + std * torch.randn(batch, dim)
        # log N(z_{k+1}; z_k + u dt, sigma2 dt), differentiable in u only.
        log_pf = log_pf + (-0.5 / var) * (z_next - z - u * dt).pow(2).sum(-1) + c_f
        if k >= 1:
            # Brownian bridge back from z_{k+1}: N(z_k; r z_{k+1}, sigma2 dt r), r = t_k / t_{k+1}.
            r = k / (k + 1)
            c_b = -0.5 * dim * math.log(2 * math.pi * var * r)
            log_pb = log_pb + (-0.5 / (var * r)) * (z - r * z_next).pow(2).sum(-1) + c_b
        z = z_next

    delta = log_pf - log_pb - log_r(z)
    loss = 0.5 * (log_z + delta).pow(2).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item(), log_z.item()  # .item() synchronises, like osds reading its stats back


def blas_library():
    # The BLAS that torch's CPU matmuls went to (Debian's torch uses the system libblas.so.3:
    # the reference BLAS, or OpenBLAS when it is installed), read from this process's maps.
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.rsplit("/", 1)[-1]}
        return ", ".join(sorted(libs)) or None
    except OSError:
        return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", choices=sorted(TARGETS), default="gmm25")
    p.add_argument("--iters", type=int, default=50, help="timed iterations")
    p.add_argument("--warmup", type=int, default=3, help="untimed iterations first")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--batch", type=int, default=300)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--harmonics", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-logz", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--verbose", action="store_true", help="print loss and log Z to stderr")
    p.add_argument("--log-every", type=int, default=50, help="iterations between --verbose lines")
    a = p.parse_args(argv)

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dim, sigma2, log_r = TARGETS[a.target]
    net = Drift(dim, a.width, a.harmonics)
    log_z = nn.Parameter(torch.zeros(()))
    opt = torch.optim.Adam([{"params": net.parameters(), "lr": a.lr},
                            {"params": [log_z], "lr": a.lr_logz}],
                           betas=(0.9, 0.999), eps=1e-8)

    def run(n, first):
        loss = float("nan")
        for i in range(first, first + n):
            loss, lz = tb_iteration(net, log_z, opt, log_r, dim, sigma2, a.batch, a.steps)
            if not math.isfinite(loss):
                sys.exit(f"peer: iteration {i}: loss {loss}")
            if a.verbose and (i + 1) % a.log_every == 0:
                print(f"iter {i + 1:6d}  loss {loss:9.4f}  log Z {lz:9.4f}", file=sys.stderr, flush=True)
        return loss

    run(a.warmup, 0)
    start = time.perf_counter()
    loss = run(a.iters, a.warmup)
    elapsed = time.perf_counter() - start
    print(json.dumps({"impl": "pytorch", "target": a.target, "d": dim, "threads": torch.get_num_threads(),
                      "iters": a.iters, "warmup": a.warmup, "seconds": round(elapsed, 4),
                      "it_per_s": a.iters / elapsed if a.iters > 0 else None,
                      "final_loss": loss, "torch": torch.__version__, "blas": blas_library()}), flush=True)


if __name__ == "__main__":
    main()
