"""Benchmark of the sweep engine: the naive path against the fast path, in one run.

    python -m fragility.bench sweep --model resnet18 --input 3x32x32 --test-size 2000 --layers all

Both paths sweep the same model and data; the tables must be identical. Per layer it prints
seconds of each path, their ratio and the fraction of the ideal: the FLOPs the fast path
must do at least (the prefix once, the downstream graph once per distinct variant,
counted with torch.utils.flop_counter) divided by the machine's measured forward FLOP/s.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from . import GLOBAL_LAYER
from .models import build_model, list_layers
from .sweep import UNFILTERED, MaskedLayer, plan_variants, sweep
from .upstream import split_at


def count_flops(fn, *args) -> int:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        fn(*args)
    return counter.get_total_flops()


def measure_flops_per_second(model, x: torch.Tensor, batch_size: int, repeats: int = 3) -> float:
    """Forward FLOP/s of the whole network on this machine, best of ``repeats``."""
    flops = count_flops(model, x[:batch_size]) * (len(x) / batch_size)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        with torch.inference_mode():
            for i in range(0, len(x), batch_size):
                model(x[i : i + batch_size])
        best = min(best, time.perf_counter() - started)
    return flops / best


def ideal_seconds(model, layer: str, x: torch.Tensor, steps: int, flops_per_second: float) -> float:
    """Lower bound of the fast path: prefix once, suffix per distinct variant, clean + adversarial."""
    network = split_at(model, list_layers(model) if layer == GLOBAL_LAYER else [layer])
    one = x[:1]
    cached = network.prefix(one)
    prefix, suffix = count_flops(network.prefix, one), count_flops(network.suffix, *cached)
    _, representatives = plan_variants(MaskedLayer(model, layer).values, steps)
    distinct = len(representatives | {UNFILTERED: None})
    return 2 * len(x) * (prefix + distinct * suffix) / flops_per_second


def bench_sweep(args) -> pd.DataFrame:
    torch.manual_seed(0)
    channels, height, width = (int(v) for v in args.input.split("x"))
    model = build_model(args.model, 10, channels, None, [0.5] * channels, [0.25] * channels, stem=args.stem).eval()
    x = torch.rand(args.test_size, channels, height, width)
    with torch.inference_mode():
        y = model(x).argmax(1)  # labels the network gets right, so accuracies move under filtering
    x_adv = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    layers = list_layers(model) + [GLOBAL_LAYER] if args.layers == "all" else args.layers.split(",")
    flops_per_second = measure_flops_per_second(model, x, args.batch_size)
    print(f"{args.model} {args.input} stem={args.stem} test={args.test_size} A={args.steps} "
          f"threads={torch.get_num_threads()} forward={flops_per_second / 1e9:.1f} GFLOP/s", flush=True)
    rows = []
    for layer in layers:
        timings, tables = {}, {}
        for method in ("naive", "fast"):
            started = time.perf_counter()
            tables[method] = sweep(model, layer, x, y, x_adv, steps=args.steps, batch_size=args.batch_size, method=method)
            timings[method] = time.perf_counter() - started
        pd.testing.assert_frame_equal(tables["naive"], tables["fast"], check_exact=True)
        ideal = ideal_seconds(model, layer, x, args.steps, flops_per_second)
        rows.append({"layer": layer, "naive_s": timings["naive"], "fast_s": timings["fast"],
                     "speedup": timings["naive"] / timings["fast"], "ideal_s": ideal, "fast_vs_ideal": timings["fast"] / ideal})
        print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()), flush=True)
    table = pd.DataFrame(rows)
    local = table[table["layer"] != GLOBAL_LAYER]
    for name, part in (("all local layers", local), ("with __global__", table)):
        naive, fast, ideal = part["naive_s"].sum(), part["fast_s"].sum(), part["ideal_s"].sum()
        print(f"TOTAL {name}: naive {naive:.1f} s, fast {fast:.1f} s, speedup {naive / fast:.2f}x, "
              f"ideal {ideal:.1f} s, fast/ideal {fast / ideal:.2f}; tables identical", flush=True)
    return table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fragility.bench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser("sweep", help="naive vs fast sweep on one architecture")
    bench.add_argument("--model", default="resnet18")
    bench.add_argument("--input", default="3x32x32", help="CxHxW of the test images")
    bench.add_argument("--test-size", type=int, default=2000)
    bench.add_argument("--layers", default="all", help="all, or comma-separated layer names")
    bench.add_argument("--steps", type=int, default=25)
    bench.add_argument("--batch-size", type=int, default=256)
    bench.add_argument("--stem", default="plain", choices=["plain", "cifar"])
    bench.add_argument("--threads", type=int, default=None)
    bench.add_argument("--csv", default=None, help="also write the per-layer table here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    table = bench_sweep(args)
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
