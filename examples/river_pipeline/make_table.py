"""Write ``loans.csv``: a table as an export gives it to you.

Loan applications and how they ended (``outcome``: repaid, late, default), with what makes
a real table awkward: string categories (``purpose`` with a long tail of rare values,
``home``, ``term``), empty cells (``income`` and ``purpose`` have gaps), booleans
(``employed`` as true/false), integers beside floats, and the rows sorted by ``outcome`` as
many exports are (bootstrap's stratified split copes with that). The outcome depends on the
categories, the numbers and whether ``income`` is missing, so a model that drops any of
them scores visibly worse. Deterministic for a seed.

    .venv/bin/python examples/river_pipeline/make_table.py loans.csv [--rows 3000] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
import math
import random
from pathlib import Path

PURPOSES = ["car", "home", "debt", "education", "medical", "business", "wedding", "boat", "solar"]
PURPOSE_WEIGHTS = [30, 25, 20, 10, 6, 5, 2, 1, 1]  # a long tail: the last ones are rare
PURPOSE_RISK = {"car": -0.3, "home": -0.6, "debt": 0.4, "education": 0.1, "medical": 0.6, "business": 0.8,
                "wedding": 0.2, "boat": 0.3, "solar": -0.4}
HOMES = {"own": -0.5, "mortgage": -0.2, "rent": 0.4}
COLUMNS = ["amount", "term", "income", "purpose", "home", "employed", "prior_defaults", "outcome"]


def loan_rows(n: int = 3000, seed: int = 0) -> list[dict]:
    """``n`` applications, sorted by outcome; None marks an empty cell."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        purpose = rng.choices(PURPOSES, PURPOSE_WEIGHTS)[0]
        home = rng.choice(list(HOMES))
        term = rng.choice(["36m", "60m"])
        employed = rng.random() < 0.8
        income = rng.lognormvariate(math.log(45_000), 0.5)
        amount = round(rng.uniform(1_000, 40_000), -2)
        prior = rng.choices([0, 1, 2, 3], [80, 12, 5, 3])[0]
        income_missing = rng.random() < (0.08 if employed else 0.35)  # the unemployed often leave it blank
        risk = (2.5 * amount / income + PURPOSE_RISK[purpose] + HOMES[home] + (0.5 if term == "60m" else 0.0)
                + (0.0 if employed else 0.9) + 0.6 * prior + (0.5 if income_missing else 0.0) - 1.3)
        score = risk + rng.gauss(0, 0.6)
        outcome = "default" if score > 0.9 else "late" if score > 0.0 else "repaid"
        rows.append({"amount": int(amount), "term": term, "income": None if income_missing else round(income, 2),
                     "purpose": None if rng.random() < 0.04 else purpose, "home": home,
                     "employed": employed, "prior_defaults": prior, "outcome": outcome})
    rows.sort(key=lambda r: r["outcome"])
    return rows


def write_csv(rows: list[dict], path: Path) -> Path:
    """As it ships: empty cells for missing values, booleans as true/false."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else str(v).lower() if isinstance(v, bool) else v
                             for k, v in row.items()})
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", nargs="?", default="loans.csv")
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = loan_rows(args.rows, args.seed)
    write_csv(rows, Path(args.out))
    counts = {c: sum(r["outcome"] == c for r in rows) for c in ("repaid", "late", "default")}
    print(f"wrote {args.out}: {len(rows)} rows, outcome {counts}")


if __name__ == "__main__":
    main()
