"""Write the rotating digits as images in JSON Lines: the form an image model's data has.

Each line is ``{"image": [[[...8 values...], ... 8 rows]], "digit": 7}`` — one channel of
8×8 pixels, nested as ``[C][H][W]`` — so bootstrap infers a ``tensor`` feature of shape
``[1, 8, 8]`` and the network gets its batches as ``[n, 1, 8, 8]``; `/predict` takes the same
nested lists and the Open Inference Protocol one FP32 input ``[n, 1, 8, 8]``.

Events ``--skip`` .. ``--events`` of the ``digits-rotate`` stream (its phases, 0° to 45°, spread
over ``--events``); the same seed gives the same images, so a bootstrap file and the stream
that follows it are two slices of one sequence:

    PYTHONPATH=examples/cnn_digits .venv/bin/python -m digits_cnn.make_images boot.jsonl --events 7000 --to 1000
    PYTHONPATH=examples/cnn_digits .venv/bin/python -m digits_cnn.make_images stream.jsonl --events 7000 --skip 1000
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from training.streams.digits import FEATURES, digits_rotate

SIDE = 8


def as_image(x: dict[str, float]) -> list[list[list[float]]]:
    """The 64 pixel features as one 8×8 channel."""
    pixels = [round(x[f], 4) for f in FEATURES]
    return [[pixels[r * SIDE:(r + 1) * SIDE] for r in range(SIDE)]]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--events", type=int, default=7000, help="length of the whole stream (its phases spread over it)")
    p.add_argument("--skip", type=int, default=0, help="first event written")
    p.add_argument("--to", type=int, default=None, help="event after the last one written (default --events)")
    p.add_argument("--seed", type=int, default=42, help="stream seed (perennial's default, 42)")
    args = p.parse_args(argv)
    stream = digits_rotate(n_events=args.events, seed=args.seed)
    written = 0
    with args.out.open("w") as f:
        for x, y in itertools.islice(stream, args.skip, args.to or args.events):
            f.write(json.dumps({"image": as_image(x), "digit": y}) + "\n")
            written += 1
    print(f"wrote {written} images to {args.out}")


if __name__ == "__main__":
    main()
