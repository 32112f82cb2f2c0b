"""Benchmark of the sweep engine: the naive path against the fast path, in one run.

    python -m fragility.bench sweep --model resnet18 --input 3x32x32 --test-size 2000 --layers all
    python -m fragility.bench memory --model resnet18 --input 3x32x32 --test-size 2000 --layers all

Both paths sweep the same model and data; the tables must be identical. Per layer it prints
seconds of each path, their ratio and the fraction of the ideal: the FLOPs the fast path
must do at least (the prefix once, the downstream graph once per distinct variant,
counted with torch.utils.flop_counter) divided by the machine's forward FLOP/s, measured
on the naive path of the same layer (nothing but forward passes, so contention from
other work on the machine affects both alike). ``memory`` runs one fast sweep per layer and
one naive evaluation, each in a fresh interpreter, and compares their peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from . import GLOBAL_LAYER
from .evaluation import predict
from .models import build_model, filtered_layers, layer_names
from .sweep import UNFILTERED, MaskedLayer, plan_variants, sweep
from .upstream import split_at


def count_flops(fn, *args) -> int:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        fn(*args)
    return counter.get_total_flops()


def sweep_flops(model, layer: str, x: torch.Tensor, steps: int) -> tuple[float, float]:
    """FLOPs of the naive path (whole network per variant) and the least the fast path must
    do (prefix once, downstream graph once per distinct variant), clean + adversarial."""
    network = split_at(model, filtered_layers(model, layer))
    one = x[:1]
    whole, prefix = count_flops(model, one), count_flops(network.prefix, one)
    suffix = count_flops(network.suffix, *network.prefix(one))
    variants, representatives = plan_variants(MaskedLayer(model, layer, steps).values, steps)
    distinct = len(representatives | {UNFILTERED: None})
    images = 2 * len(x)
    return images * len(variants) * whole, images * (prefix + distinct * suffix)


def bench_inputs(args):
    """The model (random weights, seed 0), test images, labels it gets right, perturbed images."""
    torch.manual_seed(0)
    channels, height, width = (int(v) for v in args.input.split("x"))
    model = build_model(args.model, 10, channels, None, [0.5] * channels, [0.25] * channels, stem=args.stem).eval()
    x = torch.rand(args.test_size, channels, height, width)
    y = predict(model, x, args.batch_size)  # labels the network gets right, so accuracies move under filtering
    x_adv = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    return model, x, y, x_adv


def chosen_layers(args) -> list[str]:
    return layer_names(args.model, args.stem) + [GLOBAL_LAYER] if args.layers == "all" else args.layers.split(",")


def bench_sweep(args) -> pd.DataFrame:
    model, x, y, x_adv = bench_inputs(args)
    layers = chosen_layers(args)
    print(f"{args.model} {args.input} stem={args.stem} test={args.test_size} A={args.steps} "
          f"threads={torch.get_num_threads()}", flush=True)
    rows = []
    for layer in layers:
        timings, tables = {}, {}
        for method in ("naive", "fast"):
            started = time.perf_counter()
            tables[method] = sweep(model, layer, x, y, x_adv, steps=args.steps, batch_size=args.batch_size,
                                   method=method, cache_budget_mb=args.cache_budget_mb)
            timings[method] = time.perf_counter() - started
        pd.testing.assert_frame_equal(tables["naive"], tables["fast"], check_exact=True)
        naive_flops, ideal_flops = sweep_flops(model, layer, x, args.steps)
        forward_flops_per_second = naive_flops / timings["naive"]  # the naive path is forward passes only
        ideal = ideal_flops / forward_flops_per_second
        rows.append({"layer": layer, "naive_s": timings["naive"], "fast_s": timings["fast"],
                     "speedup": timings["naive"] / timings["fast"], "ideal_s": ideal, "fast_vs_ideal": timings["fast"] / ideal,
                     "forward_gflops": forward_flops_per_second / 1e9})
        _print_row(rows[-1])
    table = pd.DataFrame(rows)
    local = table[table["layer"] != GLOBAL_LAYER]
    for name, part in (("all local layers", local), ("with __global__", table)):
        naive, fast, ideal = part["naive_s"].sum(), part["fast_s"].sum(), part["ideal_s"].sum()
        print(f"TOTAL {name}: naive {naive:.1f} s, fast {fast:.1f} s, speedup {naive / fast:.2f}x, "
              f"ideal {ideal:.1f} s, fast/ideal {fast / ideal:.2f}; tables identical", flush=True)
    return table


def bench_memory(args) -> pd.DataFrame:
    """Peak RSS of a fast sweep per layer against one naive evaluation of the same test
    sets, each in a fresh interpreter; the bound is 2 × the evaluation + the cache budget."""
    layers = chosen_layers(args)
    common = [f"--{k.replace('_', '-')}={getattr(args, k)}" for k in ("model", "input", "test_size", "steps", "batch_size", "stem", "cache_budget_mb")]
    evaluation = _peak_rss_mb(common + ["--layers=none"])
    print(f"{args.model} {args.input} test={args.test_size}: one naive evaluation peaks at {evaluation:.0f} MiB", flush=True)
    rows = []
    for layer in layers:
        peak = _peak_rss_mb(common + [f"--layers={layer}"])
        bound = 2 * evaluation + args.cache_budget_mb
        rows.append({"layer": layer, "sweep_peak_mb": peak, "evaluation_peak_mb": evaluation, "bound_mb": bound, "within": peak <= bound})
        _print_row(rows[-1])
    return pd.DataFrame(rows)


def peak_once(args) -> None:
    """Run one fast sweep of ``--layers`` (or, for ``none``, one naive evaluation of the clean
    and adversarial sets) and print this process's peak RSS in MiB."""
    model, x, y, x_adv = bench_inputs(args)
    if args.layers == "none":
        predict(model, torch.cat([x, x_adv]), args.batch_size)
    else:
        sweep(model, args.layers, x, y, x_adv, steps=args.steps, batch_size=args.batch_size, cache_budget_mb=args.cache_budget_mb)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _peak_rss_mb(argv: list[str]) -> float:
    done = subprocess.run([sys.executable, "-m", "fragility.bench", "peak", *argv], capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


def _print_row(row: dict) -> None:
    print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fragility.bench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("sweep", "naive vs fast sweep time on one architecture"),
                            ("memory", "peak memory of the fast sweep vs one naive evaluation"),
                            ("peak", "(internal) one run whose peak memory `memory` reads")):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--model", default="resnet18")
        command.add_argument("--input", default="3x32x32", help="CxHxW of the test images")
        command.add_argument("--test-size", type=int, default=2000)
        command.add_argument("--layers", default="all", help="all, or comma-separated layer names")
        command.add_argument("--steps", type=int, default=25)
        command.add_argument("--batch-size", type=int, default=256)
        command.add_argument("--stem", default="plain", choices=["plain", "cifar"])
        command.add_argument("--cache-budget-mb", type=float, default=1024.0)
        command.add_argument("--threads", type=int, default=None)
        command.add_argument("--csv", default=None, help="also write the per-layer table here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.command == "peak":
        peak_once(args)
        return
    table = (bench_sweep if args.command == "sweep" else bench_memory)(args)
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
