"""Tables shaped like a user's: categorical string columns, missing cells, rows sorted by class.

Used by the tests of the model spec end to end (bootstrap from a CSV, serving raw rows).
Deterministic for a seed; the label depends on both categorical columns and on a numeric
one, so a model that ignores categories (or mangles missing values) scores visibly worse.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

PLANS = ["basic", "plus", "pro", "team"]
CITIES = ["Oslo", "Rome", "Lima", "Pune"]
REGIONS = ["north", "south", "east", "west", "central"]


def customer_rows(n: int = 1500, seed: int = 0) -> list[dict]:
    """Rows of a churn table: ``tenure`` (numeric, 10% missing), ``spend`` (numeric),
    ``plan`` and ``region`` (strings, region 5% missing), ``autopay`` (boolean), ``churn``
    (yes/no); sorted by ``churn`` like many exported files."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        plan, region = rng.choice(PLANS), rng.choice(REGIONS)
        tenure = rng.uniform(0, 60)
        spend = rng.gauss(50 + 20 * PLANS.index(plan), 10)
        autopay = rng.random() < 0.5
        risk = (0.9 if plan == "basic" else -0.6 if plan == "pro" else 0.0) \
            + (0.8 if region in ("south", "east") else -0.4) - tenure / 30 + (0.0 if autopay else 0.7)
        churn = "yes" if risk + rng.gauss(0, 0.4) > 0 else "no"
        rows.append({"tenure": round(tenure, 1) if rng.random() > 0.1 else None, "spend": round(spend, 2),
                     "plan": plan, "region": region if rng.random() > 0.05 else None,
                     "autopay": autopay, "churn": churn})
    rows.sort(key=lambda r: r["churn"])
    return rows


def house_rows(n: int = 1500, seed: int = 0) -> list[dict]:
    """Rows with a numeric target ``price`` from size, a categorical ``district`` and a
    numeric ``age`` with gaps."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        district = rng.choice(REGIONS)
        size = rng.uniform(30, 200)
        age = rng.uniform(0, 80)
        price = 1000 * size * (1.5 if district == "central" else 1.0) - 500 * age + rng.gauss(0, 5000)
        rows.append({"size": round(size, 1), "district": district,
                     "age": round(age) if rng.random() > 0.1 else None, "price": round(price, 2)})
    return rows


def table(n: int, seed: int) -> tuple[list[dict], list[str], list[float]]:
    """Rows with a numeric, an optional numeric (absent or null), a categorical and a boolean
    column; a class label and a numeric target that depend on all of them."""
    rng = random.Random(seed)
    rows, labels, targets = [], [], []
    for _ in range(n):
        city, income, vip = rng.choice(CITIES), rng.gauss(50, 15), rng.random() < 0.3
        row: dict = {"income": round(income, 2), "city": city, "vip": vip}
        channel = rng.choice(["web", "shop", "phone", None])  # an optional categorical: null or absent
        if channel is not None or rng.random() < 0.5:
            row["channel"] = channel
        u = rng.random()
        if u < 0.8:
            row["age"] = round(rng.uniform(18, 80), 1)
        elif u < 0.9:
            row["age"] = None
        score = ((income - 50) / 15 + (1.5 if city in ("Oslo", "Lima") else -1.0) + (1.0 if vip else 0.0)
                 + (0.5 if channel == "web" else 0.0))
        rows.append(row)
        labels.append("yes" if score + rng.gauss(0, 0.5) > 0 else "no")
        targets.append(round(10 * score + rng.gauss(0, 1), 3))
    return rows, labels, targets


def write_csv(rows: list[dict], path: Path) -> Path:
    """Write rows as a CSV file as it ships: empty cells for missing values."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else ("true" if v is True else "false" if v is False else v)
                             for k, v in row.items()})
    return path
