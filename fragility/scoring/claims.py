"""Does the paper hold? Its findings as claims, one row per claim × dataset × model (docs/method.md
defines each). No torch.

Each stress test declares its claims as :class:`ClaimSpec` entries in its own module; the
registry (:func:`fragility.stress.register`) adds them to :data:`CLAIMS`, and
:func:`claims_table` computes every registered claim from the collected tables. A finding
must be earned (METHOD §15): a claim whose precondition fails, whose tables hold no usable
row, or whose test cannot reach significance at the run's n (``min_n``) is ``undetermined``
with the reason — never a ``yes`` or a ``no``. A claim that does not hold is a result, not a
bug: the definitions never bend to make one hold.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..trust import checkpoint_name, usable_rows

CLAIMS_COLUMNS = ["claim", "dataset", "model", "value", "spread", "n", "min_n", "holds", "detail"]
HOLDS = ("yes", "no", "undetermined")
ALPHA = 0.05  # the significance level of every claim's test
SCOPES = ("model", "across_datasets", "across_models")


@dataclass(frozen=True)
class Finding:
    """What a claim found for one (dataset, model): its ``value`` and ``spread`` (std over
    seeds, NaN where none), ``n`` independent units, whether it ``holds`` (None: undetermined,
    ``detail`` says why) and the ``detail`` a reader needs; ``claim`` names a variant of the
    spec (``selective_beats_regular_adv_whitebox``), None: the spec's own name."""

    value: float
    n: int
    holds: bool | None
    detail: str
    spread: float = float("nan")
    claim: str | None = None


def undetermined(detail: str, n: int = 0, claim: str | None = None) -> Finding:
    """A finding that cannot be judged: a precondition failed or nothing was measured."""
    return Finding(float("nan"), n, None, detail, claim=claim)


@dataclass(frozen=True)
class ClaimSpec:
    """One claim: its ``name``, what it ``tests`` (a sentence), the ``statistic`` that decides
    it, ``min_n`` — the smallest n at which it can hold at :data:`ALPHA` —, what n ``counts``,
    the collected ``tables`` it reads and ``compute(tables, options)``: the :class:`Finding`
    (or several, for variants) from the usable rows of those tables and the claims options
    (:func:`claims_table`). ``scope``: ``model`` — one per (dataset, model) whose tables
    exist —; ``across_datasets`` — one per model run on two or more datasets —;
    ``across_models`` — one per dataset two or more models ran on."""

    name: str
    tests: str
    statistic: str
    min_n: int
    counts: str
    tables: tuple[str, ...]
    compute: Callable[[dict[str, pd.DataFrame], dict], Finding | list[Finding]]
    scope: str = "model"

    def __post_init__(self):
        if self.scope not in SCOPES:
            raise ValueError(f"claim {self.name}: unknown scope {self.scope!r}; choose from {SCOPES}")


CLAIMS: dict[str, ClaimSpec] = {}


def register_claim(spec: ClaimSpec) -> ClaimSpec:
    """Add ``spec`` to :data:`CLAIMS` (a second claim of one name is an error)."""
    if CLAIMS.get(spec.name, spec) is not spec:
        raise ValueError(f"claim {spec.name!r} is registered twice")
    CLAIMS[spec.name] = spec
    return spec


def claim_tables(specs: dict[str, ClaimSpec] | None = None) -> list[str]:
    """Every collected table the registered claims read, in registry order."""
    return list(dict.fromkeys(table for spec in (specs or CLAIMS).values() for table in spec.tables))


def verdict(spec: ClaimSpec, finding: Finding) -> tuple[str, str]:
    """``holds`` (yes, no, undetermined) and the detail, by METHOD §15: undetermined when the
    finding is, when its value is missing, or when n < ``min_n``."""
    if finding.holds is None or not np.isfinite(finding.value):
        return "undetermined", finding.detail
    if finding.n < spec.min_n:
        return "undetermined", f"{finding.detail}; needs n ≥ {spec.min_n} (has {finding.n})"
    return ("yes" if finding.holds else "no"), finding.detail


def _rows(spec: ClaimSpec, found, dataset: str, model: str, note: str) -> list[dict]:
    rows = []
    for finding in found if isinstance(found, list) else [found]:
        holds, detail = verdict(spec, finding)
        rows.append(
            {
                "claim": finding.claim or spec.name,
                "dataset": dataset,
                "model": model,
                "value": float(finding.value),
                "spread": float(finding.spread),
                "n": int(finding.n),
                "min_n": spec.min_n,
                "holds": holds,
                "detail": f"{detail}; n counts {spec.counts}{note}",
            }
        )
    return rows


def _pairs(tables: dict[str, pd.DataFrame]) -> list[tuple[str, str]]:
    """Every (dataset, model) of the tables, in the order they appear."""
    seen = [pair for table in tables.values() if not table.empty for pair in zip(table["dataset"], table["model"])]
    return list(dict.fromkeys(seen))


def _own(table: pd.DataFrame, **keys) -> pd.DataFrame:
    mask = np.logical_and.reduce([table[key] == value for key, value in keys.items()])
    return table[mask]


def _left_out(table: pd.DataFrame, left_out: int) -> str:
    """'; N unusable (seed, checkpoint) left out (why)': the table's own reasons where it gives
    them (a precondition of its stress test, such as a robust F*), else trust.parquet."""
    if not left_out:
        return ""
    reasons = sorted(set(table.loc[~table["usable"].astype(bool), "why"].dropna()) - {""}) if "why" in table else []
    shown = "; ".join(reasons[:2]) + ("; …" if len(reasons) > 2 else "") if reasons else "trust.parquet"
    return f"; {left_out} unusable (seed, checkpoint) left out ({shown})"


def claims_table(tables: dict[str, pd.DataFrame], options: dict, specs: dict[str, ClaimSpec] | None = None) -> pd.DataFrame:
    """Every registered claim (``specs``, default :data:`CLAIMS`) for every (dataset, model)
    of the collected ``tables`` (name → DataFrame, every dataset and model): a claim of scope
    ``model`` runs where each table it reads has rows of that pair, on their usable rows
    (:func:`fragility.trust.usable_rows`; the detail says how many (seed, checkpoint) were
    left out). ``options``: ``roles`` (model → :meth:`fragility.structure.Structure.roles`),
    ``chance`` (dataset → 1/K) and each stress test's claim settings by test name."""
    specs = specs or CLAIMS
    rows = []
    for dataset, model in _pairs(tables):
        for spec in (s for s in specs.values() if s.scope == "model"):
            if any(name not in tables or _own(tables[name], dataset=dataset, model=model).empty for name in spec.tables):
                continue
            own = {name: usable_rows(_own(tables[name], dataset=dataset, model=model)) for name in spec.tables}
            left_out = own[spec.tables[0]][1]
            note = _left_out(_own(tables[spec.tables[0]], dataset=dataset, model=model), left_out)
            usable = {name: rows_ for name, (rows_, _) in own.items()}
            if usable[spec.tables[0]].empty:
                found = undetermined("no usable checkpoint")
            else:
                found = spec.compute(usable, {**options, "dataset": dataset, "model": model})
            rows += _rows(spec, found, dataset, model, note)
    for spec in (s for s in specs.values() if s.scope != "model"):
        if any(name not in tables for name in spec.tables):
            continue
        usable = {name: usable_rows(tables[name])[0] for name in spec.tables}
        across, within = ("dataset", "model") if spec.scope == "across_datasets" else ("model", "dataset")
        first = usable[spec.tables[0]]
        for key in first[within].unique():
            own = {name: table[table[within] == key] for name, table in usable.items()}
            compared = list(own[spec.tables[0]][across].unique())
            if len(compared) >= 2:
                found = spec.compute(own, {**options, within: key})
                dataset, model = (",".join(compared), key) if across == "dataset" else (key, ",".join(compared))
                rows += _rows(spec, found, dataset, model, "")
    return pd.DataFrame(rows, columns=CLAIMS_COLUMNS)


# ------------------------------------------------------------ helpers the claims share


def per_seed_mean(values: pd.Series, seeds) -> pd.Series:
    """The mean of ``values`` per seed: what a test across seeds counts (METHOD §15)."""
    return pd.Series(np.asarray(values, dtype=float), index=pd.Index(np.asarray(seeds), name="seed")).groupby(level=0).mean()


def per_seed_std(values: pd.Series, seeds) -> float:
    """The std over seeds of the per-seed means (NaN with one seed)."""
    per_seed = per_seed_mean(values, seeds)
    return float(per_seed.std(ddof=1)) if len(per_seed) > 1 else np.nan


def binomial_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper–Pearson) interval of a fraction ``successes`` / ``n``."""
    from scipy.stats import beta

    tail = (1 - level) / 2
    low = float(beta.ppf(tail, successes, n - successes + 1)) if successes > 0 else 0.0
    high = float(beta.ppf(1 - tail, successes + 1, n - successes)) if successes < n else 1.0
    return low, high


def fraction_finding(flags: pd.Series, seeds, holds_at: float, detail: str, strict: bool = False, note: str = "") -> Finding:
    """The mean over seeds of each seed's fraction of ``flags`` (n = seeds), holding at ``holds_at``
    (above it with ``strict``); ``detail`` (the fraction in words) gains the exact binomial
    interval of the pooled fraction, then ``note``."""
    per_seed = per_seed_mean(flags.astype(float), seeds)
    value = float(per_seed.mean())
    low, high = binomial_interval(int(flags.sum()), len(flags))
    holds = value > holds_at if strict else value >= holds_at
    detail = f"{detail} (95 % {low:.2f}–{high:.2f}){note}"
    return Finding(value, len(per_seed), holds, detail, per_seed_std(flags.astype(float), seeds))


def wilcoxon_min_n(alpha: float = ALPHA) -> int:
    """The smallest n at which an exact two-sided Wilcoxon signed-rank test can reach p < ``alpha``
    (its smallest p is 2 / 2^n: n = 6 at 0.05)."""
    return math.floor(math.log2(2 / alpha)) + 1


def confidence_note(rows: pd.DataFrame) -> str:
    """'; mean label confidence clean 0.98, adv 0.95' (bootstrap) or '' without intervals."""
    parts = [
        f"{kind} {rows[f'label_{kind}_conf'].mean():.2f}"
        for kind in ("clean", "adv")
        if f"label_{kind}_conf" in rows and rows[f"label_{kind}_conf"].notna().any()
    ]
    return f"; mean label confidence {', '.join(parts)}" if parts else ""


# ------------------------------------------------------------ the claims table as text


def untrusted_warning(trust: pd.DataFrame) -> str:
    """One sentence naming every checkpoint that is not usable and why ('' when all are)."""
    bad = trust[~trust["usable"].astype(bool)]
    if bad.empty:
        return ""
    named = "; ".join(f"{checkpoint_name(row)}: {row['why']}" for _, row in bad.iterrows())
    return f"Warning: {len(bad)} of {len(trust)} checkpoints are not usable and are left out of the claims ({named})."


def claims_markdown(claims: pd.DataFrame, trust: pd.DataFrame | None = None) -> str:
    """The claims table as Markdown, one line per claim, after a warning naming the
    checkpoints that are not usable (``trust``), if any."""
    warning = untrusted_warning(trust) if trust is not None else ""
    lines = [f"> **{warning}**", ""] if warning else []
    lines += [
        "| claim | dataset | model | value | spread | n | min n | holds | detail |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in claims.itertuples():
        spread = "" if pd.isna(row.spread) else f"{row.spread:.3f}"
        value = "n/a" if pd.isna(row.value) else f"{row.value:.3f}"
        holds = {"yes": "**yes**", "no": "no"}.get(row.holds, "*undetermined*")
        lines.append(
            f"| {row.claim} | {row.dataset} | {row.model} | {value} | {spread} | {row.n} | {row.min_n} | {holds} | {row.detail} |"
        )
    return "\n".join(lines) + "\n"


def claims_html(claims: pd.DataFrame, trust: pd.DataFrame | None = None) -> str:
    """The claims table as HTML, opening with a warning box naming the checkpoints that are
    not usable (``trust``), if any."""
    warning = untrusted_warning(trust) if trust is not None else ""
    box = (
        '<div style="border:2px solid #b00;background:#fee;padding:8px;margin-bottom:12px">'
        f"<strong>{html.escape(warning)}</strong></div>\n"
        if warning
        else ""
    )
    return box + claims.to_html(index=False, float_format="%.3f")
