"""Write product reviews as JSON Lines, with a vocabulary shift part-way through.

Each line is ``{"review": "...", "product": "...", "sentiment": "pos" | "neg"}``. From
review ``--shift-after`` on, reviewers start saying what they mean with words
the first part never uses ("fire", "mid", ...): a model frozen at bootstrap keeps guessing
from the old words, one that keeps learning from feedback picks the new ones up.

    python examples/text/make_reviews.py --out boot.jsonl --n 800                 # bootstrap data
    python examples/text/make_reviews.py --out stream.jsonl --skip 800 --n 2200   # what follows

The same ``--seed`` gives the same sequence, so the second file continues the first.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

PRODUCTS = ("headphones", "kettle", "backpack", "desk lamp", "phone case", "blender", "jacket", "router")
WORDS = {
    ("pos", False): ("great", "excellent", "love", "perfect", "sturdy", "works well", "recommend", "happy"),
    ("neg", False): ("broken", "terrible", "refund", "cheap feeling", "stopped working", "disappointed",
                     "returned", "awful"),
    ("pos", True): ("fire", "slaps", "goated", "a banger", "no cap the best", "elite"),
    ("neg", True): ("mid", "trash", "a scam", "straight garbage", "bricked", "a flop"),
}
OPENERS = ("honestly", "so", "well", "after two weeks", "update:", "first impressions:", "tl;dr", "okay")
FILLER = ("the {p} arrived on time", "bought this {p} for my sister", "the {p} looks nice",
          "delivery took a while", "the box was fine", "setup was quick", "my second {p} this year",
          "price was fair")


def review(rng: random.Random, sentiment: str, shifted: bool, product: str) -> str:
    new_words = shifted and rng.random() < 0.85
    words = WORDS[(sentiment, new_words)]
    parts = [rng.choice(OPENERS), rng.choice(FILLER).format(p=product), f"it is {rng.choice(words)}"]
    if rng.random() < 0.6:
        parts.append(f"and {rng.choice(words)}")
    if rng.random() < 0.4:
        parts.append(rng.choice(FILLER).format(p=product))
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--n", type=int, default=3000, help="reviews to write (default 3000)")
    p.add_argument("--skip", type=int, default=0, help="start at review N of the sequence (the stream after "
                   "a bootstrap file of N reviews)")
    p.add_argument("--shift-after", type=int, default=1500,
                   help="review of the sequence from which the new words appear (default 1500)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    with args.out.open("w") as f:
        for i in range(args.skip + args.n):
            sentiment = rng.choice(("pos", "neg"))
            product = rng.choice(PRODUCTS)
            text = review(rng, sentiment, i >= args.shift_after, product)
            if i >= args.skip:
                f.write(json.dumps({"review": text, "product": product, "sentiment": sentiment}) + "\n")
    print(f"wrote {args.n} reviews to {args.out}")


if __name__ == "__main__":
    main()
