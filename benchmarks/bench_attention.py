"""Vectorised matching attention vs a per-time-step Python loop of the same math.

Times ``sertk.models.MatchingAttention`` (all frames at once, two batched matmuls) against a loop
over time steps, on the reference shape (batch 32, 150 frames, BiGRU hidden 256 -> 512 features),
forward only and forward + backward, and checks that both give the same outputs and gradients.
Run: ``python benchmarks/bench_attention.py [--device cuda] [--threads 0]``. One CPU thread by
default: on a busy shared machine a second intra-op thread spin-waits and slows small ops tenfold.
Timings vary between runs on shared machines; compare the ratio printed by one run.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch

from sertk.models import MatchingAttention
from sertk.models.common import frame_mask


def attention_loop(
    module: MatchingAttention, hidden: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same math as ``module(hidden, mask)``, one time step ``t`` per Python iteration."""
    outputs, rows = [], []
    for t in range(hidden.shape[1]):
        query = module.query(hidden[:, t])  # [batch, dim]
        scores = torch.bmm(hidden, query.unsqueeze(-1)).squeeze(-1)  # [batch, frames] over s
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1) * mask[:, t : t + 1]  # padded rows -> 0
        context = torch.bmm(weights.unsqueeze(1), hidden).squeeze(1)
        outputs.append(torch.tanh(module.combine(torch.cat([context, hidden[:, t]], dim=-1))))
        rows.append(weights)
    return torch.stack(outputs, dim=1), torch.stack(rows, dim=1)


def median_ms(
    step: Callable[[], object], *, repeats: int, warmup: int, budget_s: float, device: torch.device
) -> tuple[float, int]:
    """Median wall time of ``step()`` in ms after ``warmup`` untimed calls, and the repeats timed.

    Stops early (after at least 3 timed calls) once ``budget_s`` seconds are spent, so the slow path
    cannot make the run take minutes on a busy machine.
    """
    for _ in range(warmup):
        step()
    times: list[float] = []
    began = time.perf_counter()
    while len(times) < repeats and (len(times) < 3 or time.perf_counter() - began < budget_s):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), len(times)


def check_equal(module, hidden, mask, upstream) -> None:
    """Assert both implementations agree on outputs, attention and all gradients.

    Compared in float64, so that float32 summation order (gradients sum over thousands of frames)
    cannot hide or fake a difference in the math.
    """
    module = copy.deepcopy(module).double()
    hidden, upstream = hidden.double(), upstream.double()
    results = []
    for function in (module.forward, lambda h, m: attention_loop(module, h, m)):
        module.zero_grad()
        leaf = hidden.detach().requires_grad_(True)
        combined, attention = function(leaf, mask)
        (combined * upstream).sum().backward()
        grads = [leaf.grad] + [p.grad.clone() for p in module.parameters()]
        results.append((combined.detach(), attention.detach(), grads))
    (z1, a1, g1), (z2, a2, g2) = results
    torch.testing.assert_close(z1, z2, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(a1, a2, atol=1e-10, rtol=1e-10)
    for grad1, grad2 in zip(g1, g2, strict=True):
        torch.testing.assert_close(grad1, grad2, atol=1e-9, rtol=1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument(
        "--hidden", type=int, default=256, help="GRU hidden size (x2: bidirectional)"
    )
    parser.add_argument("--repeats", type=int, default=10, help="timed calls at most")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--budget", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (0: torch default)"
    )
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    dim = 2 * args.hidden
    module = MatchingAttention(dim).to(device)
    hidden = torch.tanh(torch.randn(args.batch, args.frames, dim, device=device))
    lengths = torch.randint(args.frames // 2, args.frames + 1, (args.batch,), device=device)
    lengths[0] = args.frames
    mask = frame_mask(lengths, args.frames)
    hidden = hidden * mask.unsqueeze(-1)  # GRU outputs are 0 on padding
    upstream = torch.randn(args.batch, args.frames, dim, device=device)

    # equality on a few utterances (full length) keeps the float64 check quick
    check_equal(module, hidden[:4], mask[:4], upstream[:4])
    print(
        f"matching attention, batch {args.batch}, frames {args.frames}, dim {dim}, {device}"
        f" ({torch.get_num_threads()} threads); median ms after {args.warmup} warm-up calls"
    )
    print("outputs, attention and gradients of both implementations agree (float64)")

    def forward(function) -> Callable[[], object]:
        def step() -> object:
            with torch.no_grad():
                return function(hidden, mask)

        return step

    def forward_backward(function) -> Callable[[], object]:
        def step() -> None:
            module.zero_grad()
            leaf = hidden.detach().requires_grad_(True)
            (function(leaf, mask)[0] * upstream).sum().backward()

        return step

    vectorised = module.forward
    loop = lambda h, m: attention_loop(module, h, m)  # noqa: E731
    timing = {"repeats": args.repeats, "budget_s": args.budget, "device": device}
    for label, wrap in (("forward", forward), ("forward+backward", forward_backward)):
        fast, n_fast = median_ms(wrap(vectorised), warmup=args.warmup, **timing)
        slow, n_slow = median_ms(wrap(loop), warmup=min(args.warmup, 1), **timing)
        print(
            f"{label:<17} vectorised {fast:8.2f} ms (n={n_fast})   loop over time {slow:8.2f} ms"
            f" (n={n_slow})   speed-up {slow / fast:5.1f}x"
        )


if __name__ == "__main__":
    main()
