"""Benchmarks of the sweep engine and of the workflow's sweep jobs, each comparing two ways
in one run.

    python -m fragility.bench sweep --model resnet18 --input 3x32x32 --test-size 2000 --layers all
    python -m fragility.bench memory --model resnet18 --input 3x32x32 --test-size 2000 --layers all
    python -m fragility.bench pipeline --model resnet18 --input 1x8x8 --test-size 360 --layers all
    python -m fragility.bench whitebox --model resnet18 --input 1x8x8 --test-size 360 --layers conv1,fc
    python -m fragility.bench engine
    python -m fragility.bench run --cores 2
    python -m fragility.bench gpu

Both paths sweep the same model and data; the tables must be identical. Per layer it prints
seconds of each path, their ratio and ``ideal_fraction``, the share of its FLOP ideal the fast
path reaches: the ideal is the FLOPs the fast path must do at least (the prefix once, the
downstream graph once per distinct variant, counted with torch.utils.flop_counter) at the
machine's forward FLOP/s, measured on the naive path of the same layer (nothing but forward
passes, so contention from other work on the machine affects both alike); 1 is the ideal,
above 1 the fused graph runs faster per FLOP than the plain forward pass. ``--methods
exact,fast`` compares those two instead, with the engine the fast path chose per layer and its margin-guard re-runs.
``memory`` runs one fast sweep per layer and one naive evaluation, each in a fresh
interpreter, and compares their peak resident memory. ``pipeline`` writes a checkpoint, test
set and adversarial set, then sweeps one checkpoint's layers three ways: in this process
(the sweep work itself), as one job per layer and as one job for all layers (fresh
interpreters running :func:`fragility.stress.job.run_stress_job`, as the workflow's jobs do), and
reports what the jobs spend outside the sweep (start-up, imports, loading). ``engine``
times naive, exact and fast at the two sizes the engine is held to (ResNet-18, 3×32×32,
every third layer plus the last: N = 128 images at A = 4 and N = 256 at A = 10), then the
default run; ``run`` alone runs the workflow's default config in a fresh folder and prints
its wall time and the job seconds of each rule. ``gpu`` is the check to run on a GPU
machine (``--device cpu`` runs it on the CPU): the sweep on the device — exact, fast, and
fast with variants mapped 16 per call — against the CPU's exact tables on three layers of
ResNet-18 (TF32 off: the device must give the same tables, not close ones), the white-box
reading and one epoch of the paper's adversarial training on the device, with images/s of
each path and the fast path's fraction of its FLOP ideal there.
"""

from __future__ import annotations

import argparse
import copy
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from . import GLOBAL_LAYER
from .artifacts import AdversarialSet, Checkpoint, ModelSpec, TestSet, TrainConfig
from .attack import Attack
from .data import Dataset
from .engine.sweep import GPU_VARIANT_BATCH, UNFILTERED, MaskedLayer, SweepOptions
from .engine.upstream import split_at
from .engine.whitebox import attack_removals
from .evaluation import predict
from .models import build_model, filtered_layers, layer_names, resolve_device
from .stress import STRESS_TESTS, Context, validate
from .stress.job import run_stress_job
from .stress.semirobust import SemirobustSettings, robust_network
from .stress.synaptic import SweepSettings, plan_variants, sweep


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
    model = model.to(resolve_device(args.device))
    x = torch.rand(args.test_size, channels, height, width)
    y = predict(model, x, args.batch_size).clone()  # labels the network gets right, so accuracies move under filtering
    x_adv = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    return model, x, y, x_adv


def chosen_layers(args) -> list[str]:
    return layer_names(args.model, args.stem) + [GLOBAL_LAYER] if args.layers == "all" else args.layers.split(",")


def bench_sweep(args) -> pd.DataFrame:
    model, x, y, x_adv = bench_inputs(args)
    layers = chosen_layers(args)
    slow, quick = args.methods.split(",")
    print(
        f"{args.model} {args.input} stem={args.stem} test={args.test_size} A={args.steps} "
        f"threads={torch.get_num_threads()}: {slow} vs {quick}",
        flush=True,
    )
    rows = []
    for layer in layers:
        timings, tables, stats = {}, {}, {}
        for method in (slow, quick):
            started = time.perf_counter()
            tables[method] = sweep(
                model,
                layer,
                x,
                y,
                x_adv,
                steps=args.steps,
                batch_size=args.batch_size,
                method=method,
                cache_budget_mb=args.cache_budget_mb,
                variant_batch=args.variant_batch,
                stats=stats.setdefault(method, {}),
            )
            timings[method] = time.perf_counter() - started
        pd.testing.assert_frame_equal(tables[slow], tables[quick], check_exact=True)
        row = {
            "layer": layer,
            f"{slow}_s": timings[slow],
            f"{quick}_s": timings[quick],
            "speedup": timings[slow] / timings[quick],
            "engine": stats[quick]["engine"],
            "guard_reruns": stats[quick]["guard_reruns"],
            "evaluations": stats[quick]["evaluations"],
        }
        if slow == "naive":
            naive_flops, ideal_flops = sweep_flops(model, layer, x, args.steps)
            forward_flops_per_second = naive_flops / timings["naive"]  # the naive path is forward passes only
            ideal = ideal_flops / forward_flops_per_second
            row |= {
                "ideal_s": ideal,
                "ideal_fraction": ideal / timings[quick],
                "forward_gflops": forward_flops_per_second / 1e9,
            }
        rows.append(row)
        _print_row(rows[-1])
    table = pd.DataFrame(rows)
    local = table[table["layer"] != GLOBAL_LAYER]
    for name, part in (("all local layers", local), ("with __global__", table)):
        a, b = part[f"{slow}_s"].sum(), part[f"{quick}_s"].sum()
        ideal = (
            f", ideal {part['ideal_s'].sum():.1f} s, {quick} at {part['ideal_s'].sum() / b:.2f} of its FLOP ideal"
            if "ideal_s" in part
            else ""
        )
        print(
            f"TOTAL {name}: {slow} {a:.1f} s, {quick} {b:.1f} s, speedup {a / b:.2f}x{ideal}; "
            f"slowest layer ratio {part['speedup'].min():.2f}; guard re-ran {part['guard_reruns'].sum()} of "
            f"{part['evaluations'].sum()} image evaluations; tables identical",
            flush=True,
        )
    return table


ENGINE_SIZES = ((128, 4), (256, 10))  # (test images, A) the engine is benchmarked at


def bench_engine(args) -> pd.DataFrame:
    """naive, exact and fast on the same layers at each of :data:`ENGINE_SIZES`, tables
    asserted identical; then the default run (:func:`bench_run`) unless ``--no-run``."""
    rows = []
    for size, steps in ENGINE_SIZES:
        args.test_size, args.steps = size, steps
        model, x, y, x_adv = bench_inputs(args)
        names = layer_names(args.model, args.stem)
        layers = names[::3] + ([names[-1]] if (len(names) - 1) % 3 else [])
        seconds, tables = {}, {}
        for method in ("naive", "exact", "fast"):
            started = time.perf_counter()
            tables[method] = [
                sweep(model, layer, x, y, x_adv, steps=steps, batch_size=args.batch_size, method=method) for layer in layers
            ]
            seconds[method] = time.perf_counter() - started
        for method in ("exact", "fast"):
            for naive, other in zip(tables["naive"], tables[method]):
                pd.testing.assert_frame_equal(naive, other, check_exact=True)
        row = {"test_size": size, "steps": steps, "layers": len(layers)} | {f"{m}_s": t for m, t in seconds.items()}
        row |= {"fast_vs_naive": seconds["naive"] / seconds["fast"], "fast_vs_exact": seconds["exact"] / seconds["fast"]}
        rows.append(row)
        _print_row(row)
    if not args.no_run:
        bench_run(args)
    return pd.DataFrame(rows)


def bench_run(args) -> pd.DataFrame:
    """The workflow's default config in a fresh folder: wall time, and per rule its jobs and
    job seconds (each job's ``results/benchmarks/`` file)."""
    repository = Path(__file__).resolve().parent.parent
    folder = Path(args.dir or tempfile.mkdtemp(prefix="fragility-run-"))
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "snakemake", "-s", str(repository / "Snakefile"), "--directory", str(folder)]
    command += ["--configfile", str(repository / "config" / "config.yaml"), "--cores", str(args.cores)]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=folder)
    wall = time.perf_counter() - started
    table = rule_seconds(folder / "results" / "benchmarks")
    print(table.to_string(index=False), flush=True)
    print(
        f"TOTAL the default run: {wall:.0f} s wall ({wall / 60:.1f} min) on {args.cores} cores, "
        f"{table['jobs'].sum()} jobs, {table['job_seconds'].sum():.0f} job seconds; results in {folder}",
        flush=True,
    )
    return table


def rule_seconds(benchmarks: Path) -> pd.DataFrame:
    """Jobs, job seconds and the median job per rule from Snakemake's benchmark files (one
    folder per rule)."""
    rows = []
    for path in sorted(benchmarks.rglob("*.tsv")):
        rule = path.relative_to(benchmarks).parts[0].removesuffix(".tsv")
        rows.append({"rule": rule, "seconds": float(pd.read_csv(path, sep="\t")["s"].iloc[-1])})
    table = pd.DataFrame(rows, columns=["rule", "seconds"])
    summary = table.groupby("rule")["seconds"].agg(jobs="count", job_seconds="sum", median_job_s="median").reset_index()
    return summary.sort_values("job_seconds", ascending=False, ignore_index=True)


def bench_whitebox(args) -> pd.DataFrame:
    """The white-box reading per layer: the naive attack per variant, the cached prefix graph
    and, with ``--variant-batch`` > 1, the cached graph with variants batched; every
    variant's per-image correctness must be identical to the naive path's."""
    model, x, y, _ = bench_inputs(args)
    attack, epsilon = Attack("fgsm"), args.epsilon
    paths = {"naive": ("naive", 1), "cached": ("fast", 1)}
    if args.variant_batch > 1:
        paths["batched"] = ("fast", args.variant_batch)
    print(
        f"{args.model} {args.input} test={args.test_size} A={args.steps} eps={epsilon} threads={torch.get_num_threads()}: "
        f"{' vs '.join(paths)} white-box" + (f" ({args.variant_batch} variants per call)" if "batched" in paths else ""),
        flush=True,
    )
    rows = []
    for layer in chosen_layers(args):
        masked = MaskedLayer(model, layer, args.steps)
        _, removals = plan_variants(masked.values, args.steps)
        row, found = {"layer": layer}, {}
        for path, (method, batch) in paths.items():
            options = SweepOptions(steps=args.steps, batch_size=args.batch_size, method=method, variant_batch=batch)
            stats = {}
            started = time.perf_counter()
            found[path] = attack_removals(model, layer, x, y, removals, epsilon, attack, options, masked, stats)
            row[f"{path}_s"] = time.perf_counter() - started
            row["variants"] = len(found[path])
            if stats["whitebox_path"] != path:
                print(f"  {layer}: the {path} path was not taken ({stats['whitebox_path']} ran)", flush=True)
        for path in list(paths)[1:]:
            if any(not (found["naive"][k] == found[path][k]).all() for k in found["naive"]):
                raise AssertionError(f"layer {layer}: the {path} white-box path classifies some image differently")
            row[f"{path}_speedup"] = row["naive_s"] / row[f"{path}_s"]
        rows.append(row)
        _print_row(row)
    table = pd.DataFrame(rows)
    totals = ", ".join(f"{path} {table[f'{path}_s'].sum():.1f} s" for path in paths)
    ratios = ", ".join(f"{path} {table['naive_s'].sum() / table[f'{path}_s'].sum():.2f}x" for path in list(paths)[1:])
    print(f"TOTAL: {totals}; speedup over naive: {ratios}; correctness identical", flush=True)
    return table


def bench_pipeline(args) -> pd.DataFrame:
    """One checkpoint's sweep jobs against the same sweeps in one process."""

    model, x, y, x_adv = bench_inputs(args)
    layers = chosen_layers(args)
    channels = x.shape[1]
    folder = Path(tempfile.mkdtemp(prefix="fragility-bench-"))
    spec = ModelSpec(args.model, 10, channels, None, [0.5] * channels, [0.25] * channels, args.stem, "kaiming_uniform")
    config = TrainConfig(epochs=1, checkpoint_every=1)
    Checkpoint.capture(model, config.optimizer(model.parameters()), 1, 0, torch.Generator(), spec, config).save(
        folder / "checkpoint.pt"
    )
    TestSet(x, y, 10).save(folder / "testset.pt")
    AdversarialSet(x_adv, y, 0.1).save(folder / "adversarial.pt")
    print(
        f"{args.model} {args.input} stem={args.stem} test={args.test_size} A={args.steps} layers={len(layers)} "
        f"threads={torch.get_num_threads()}",
        flush=True,
    )
    in_process = {}
    for layer in layers:
        started, stats = time.perf_counter(), {}
        sweep(
            model,
            layer,
            x,
            y,
            x_adv,
            steps=args.steps,
            batch_size=args.batch_size,
            cache_budget_mb=args.cache_budget_mb,
            stats=stats,
        )
        in_process[layer] = time.perf_counter() - started
        print(
            f"layer={layer} in_process_s={in_process[layer]:.2f} engine={stats['engine']} "
            f"guard_reruns={stats['guard_reruns']}/{stats['evaluations']}",
            flush=True,
        )
    per_layer = {layer: _job_seconds(args, folder, [layer]) for layer in layers}
    grouped = _job_seconds(args, folder, layers)
    work = sum(in_process.values())
    rows = [
        {"way": "in one process (the sweep work)", "seconds": work},
        {"way": "one job per layer", "seconds": sum(per_layer.values())},
        {"way": "one job per checkpoint", "seconds": grouped},
    ]
    for row in rows:
        row["vs_sweep_work"] = row["seconds"] / work
        row["outside_sweep_share"] = (row["seconds"] - work) / work
        _print_row(row)
    print(
        f"TOTAL one job per checkpoint costs {grouped / work:.2f}x the sweep work ({100 * (grouped - work) / work:.0f} % outside it); "
        f"one job per layer {sum(per_layer.values()) / work:.2f}x",
        flush=True,
    )
    return pd.DataFrame(rows)


def _job_seconds(args, folder: Path, layers: list[str]) -> float:
    """Wall time of a fresh interpreter running one sweep job over ``layers``."""
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "fragility.bench",
            "job",
            f"--dir={folder}",
            f"--layers={','.join(layers)}",
            f"--steps={args.steps}",
            f"--batch-size={args.batch_size}",
            f"--cache-budget-mb={args.cache_budget_mb}",
            f"--threads={torch.get_num_threads()}",
            f"--device={args.device}",
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def job_once(args) -> None:
    """(internal) What a workflow sweep job does: load the files once, sweep ``--layers``, write tables."""

    folder = Path(args.dir)
    options = SweepOptions(batch_size=args.batch_size, cache_budget_mb=args.cache_budget_mb)
    context = Context(folder / "checkpoint.pt", folder / "testset.pt", folder / "adversarial.pt", args.device, options)
    outputs = {layer: {"sweep": folder / "tables" / f"{layer}.parquet"} for layer in args.layers.split(",")}
    params = SweepSettings(steps=args.steps).as_params()
    run_stress_job(STRESS_TESTS["sweep"], context, outputs, params, {"dataset": "bench", "model": "bench", "seed": 0, "epoch": 1})


def bench_memory(args) -> pd.DataFrame:
    """Peak RSS of a fast sweep per layer against one naive evaluation of the same test
    sets, each in a fresh interpreter; the bound is 2 × the evaluation + the cache budget."""
    layers = chosen_layers(args)
    common = [
        f"--{k.replace('_', '-')}={getattr(args, k)}"
        for k in ("model", "input", "test_size", "steps", "batch_size", "stem", "cache_budget_mb")
    ]
    evaluation = _peak_rss_mb(common + ["--layers=none"])
    print(f"{args.model} {args.input} test={args.test_size}: one naive evaluation peaks at {evaluation:.0f} MiB", flush=True)
    rows = []
    for layer in layers:
        peak = _peak_rss_mb(common + [f"--layers={layer}"])
        bound = 2 * evaluation + args.cache_budget_mb
        rows.append(
            {"layer": layer, "sweep_peak_mb": peak, "evaluation_peak_mb": evaluation, "bound_mb": bound, "within": peak <= bound}
        )
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


GPU_LAYERS = ("conv1", "layer3.0.conv2", "fc")  # ResNet-18: the whole network downstream, half of it, the classifier
GPU_PATHS = {  # path -> (sweep method, variants per call)
    "naive": ("naive", 1),
    "exact": ("exact", 1),
    "fast": ("fast", 1),
    "mapped": ("fast", GPU_VARIANT_BATCH),
}


def bench_gpu(args) -> pd.DataFrame:
    """The sweep on ``--device`` on every path of :data:`GPU_PATHS` against the CPU's exact
    tables (identical, or an AssertionError naming the layer and path), the white-box reading
    of the last layer and one adversarial-training epoch (the paper protocol's PGD-10,
    SGD) on the device; images/s of each, and the fast path's ideal_fraction on the device."""
    device = resolve_device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False  # TF32 would give close tables, not the same ones
    torch.backends.cudnn.allow_tf32 = False
    args.device = "cpu"
    cpu_model, x, y, x_adv = bench_inputs(args)
    model = copy.deepcopy(cpu_model).to(device)
    layers = GPU_LAYERS if args.layers == "all" else tuple(args.layers.split(","))
    print(f"{args.model} {args.input} test={args.test_size} A={args.steps} on {_device_name(device)}", flush=True)
    settings, rows = {"steps": args.steps, "batch_size": args.batch_size}, []
    for layer in layers:
        reference = sweep(cpu_model, layer, x, y, x_adv, method="exact", **settings)
        row = {"layer": layer}
        for path, (method, variant_batch) in GPU_PATHS.items():
            stats = {}
            started = time.perf_counter()
            table = sweep(model, layer, x, y, x_adv, method=method, variant_batch=variant_batch, stats=stats, **settings)
            seconds = time.perf_counter() - started
            try:
                pd.testing.assert_frame_equal(reference, table, check_exact=True)
            except AssertionError as error:
                raise AssertionError(
                    f"layer {layer}: the {path} path on {device} differs from the CPU's exact tables: {error}"
                ) from None
            evaluated = 2 * len(x) * (table["step"].nunique() * table["filter"].nunique())
            row[f"{path}_images_per_s"] = evaluated / seconds
            row[f"{path}_s"] = seconds
        naive_flops, ideal_flops = sweep_flops(cpu_model, layer, x, args.steps)
        row["ideal_fraction"] = ideal_flops / (naive_flops / row["naive_s"]) / row["fast_s"]
        rows.append(row)
        _print_row(row)
    rows.append(_whitebox_on(model, layers[-1], x, y, args))
    _print_row(rows[-1])
    rows.append(_adversarial_epoch_on(model, x, y, args))
    _print_row(rows[-1])
    print(f"TOTAL the device's sweep tables equal the CPU's exact tables on {len(layers)} layers, every path", flush=True)
    return pd.DataFrame(rows)


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"


def _whitebox_on(model, layer: str, x, y, args) -> dict:
    """The white-box reading of ``layer`` on the model's device: images attacked and classified per second."""
    masked = MaskedLayer(model, layer, args.steps)
    _, removals = plan_variants(masked.values, args.steps)
    options = SweepOptions(steps=args.steps, batch_size=args.batch_size, variant_batch=GPU_VARIANT_BATCH)
    stats, started = {}, time.perf_counter()
    correct = attack_removals(model, layer, x, y, removals, args.epsilon, Attack("fgsm"), options, masked, stats)
    seconds = time.perf_counter() - started
    return {"layer": layer, "whitebox_images_per_s": len(correct) * len(x) / seconds, "whitebox_s": seconds}


def _adversarial_epoch_on(model, x, y, args) -> dict:
    """One epoch of F*'s adversarial training (the paper protocol: PGD-10 at 8/255, SGD) on
    the model's device: training images per second."""
    settings = SemirobustSettings.from_config(validate({"semirobust": {"protocol": "paper"}}), args.model)
    data = Dataset("bench", x, y, x[:1], y[:1], 10)
    started = time.perf_counter()
    robust = robust_network(model, data, settings.optimizer_for(None), settings.training_examples(8 / 255), 1, 128, 0)
    seconds = time.perf_counter() - started
    if not all(torch.isfinite(p).all() for p in robust.parameters()):
        raise AssertionError("adversarial training on the device left non-finite weights")
    return {"layer": "(adversarial training)", "train_images_per_s": len(x) / seconds, "train_s": seconds}


def _print_row(row: dict) -> None:
    print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fragility.bench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("sweep", "naive vs fast (or --methods) sweep time on one architecture"),
        ("memory", "peak memory of the fast sweep vs one naive evaluation"),
        ("pipeline", "one checkpoint's sweep jobs vs the same sweeps in one process"),
        ("whitebox", "naive vs cached white-box reading (every variant attacked) per layer"),
        ("engine", "naive / exact / fast at N = 128, A = 4 and N = 256, A = 10, then the default run"),
        ("run", "the default run in a fresh folder: wall time and job seconds per rule"),
        ("gpu", "the device's sweep (every path) against the CPU's exact tables, white-box and adversarial training there"),
        ("peak", "(internal) one run whose peak memory `memory` reads"),
        ("job", "(internal) one sweep job of `pipeline`"),
    ):
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
        command.add_argument("--methods", default="naive,fast", help="sweep: the two methods to compare, slower first")
        command.add_argument("--dir", default=None, help=argparse.SUPPRESS)
        command.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
        command.add_argument("--epsilon", type=float, default=0.05, help="whitebox: the FGSM ε")
        command.add_argument("--cores", type=int, default=2, help="run, engine: Snakemake's --cores")
        command.add_argument("--no-run", action="store_true", help="engine: leave out the default run")
        command.add_argument(
            "--variant-batch", type=int, default=1, help="sweep: variants per mapped call; whitebox: also time them batched"
        )
        if name == "gpu":
            command.set_defaults(test_size=1000)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.command in ("peak", "job"):
        (peak_once if args.command == "peak" else job_once)(args)
        return
    commands = {
        "sweep": bench_sweep,
        "memory": bench_memory,
        "pipeline": bench_pipeline,
        "whitebox": bench_whitebox,
        "engine": bench_engine,
        "run": bench_run,
        "gpu": bench_gpu,
    }
    table = commands[args.command](args)
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
