"""`digits-rotate`: handwritten digits that turn a little further in each phase.

A stream for continual learning on images: scikit-learn's 8x8 digits (64 pixel features
``px0``..``px63`` scaled to [0, 1], labels 0–9) presented in phases, each rotated further
than the last (by default 0°, 15°, 30°, 45°). Every event is lightly augmented (a random
rotation of ±5° and a shift of ±1 pixel) so the stream can be much longer than the 1,797
images without repeating itself.

The last 20 % of the images never appear in the stream: `digits_phase_dataset` draws held-out
data of any phase from them, so forgetting (backward transfer) is measured on unseen images.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
from scipy import ndimage

FEATURES = tuple(f"px{i}" for i in range(64))
HELD_OUT_FRACTION = 0.2


@functools.cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn, no download

    data = load_digits()
    return data.images / 16.0, data.target.astype(int)


def _split(held_out: bool) -> tuple[np.ndarray, np.ndarray]:
    images, labels = _digits()
    cut = round(len(images) * (1 - HELD_OUT_FRACTION))
    part = slice(cut, None) if held_out else slice(0, cut)
    return images[part], labels[part]


def phase_angle(phase: int, n_phases: int = 4, max_angle: float = 45.0) -> float:
    """Rotation of a phase: evenly spaced from 0° (phase 0) to ``max_angle`` (last phase).

    >>> [phase_angle(p) for p in range(4)]
    [0.0, 15.0, 30.0, 45.0]
    """
    if not 0 <= phase < n_phases:
        raise ValueError(f"phase={phase!r} is out of range; expected 0..{n_phases - 1}")
    return 0.0 if n_phases == 1 else max_angle * phase / (n_phases - 1)


def phase_of_event(i: int, n_events: int, n_phases: int = 4) -> int:
    """The phase the ``i``-th event of a `digits_rotate` stream belongs to.

    >>> [phase_of_event(i, 8, 4) for i in range(8)]
    [0, 0, 1, 1, 2, 2, 3, 3]
    """
    return i * n_phases // n_events


def augment_image(
    img: np.ndarray,
    rng: np.random.Generator,
    *,
    angle: float = 0.0,
    max_rotation: float = 5.0,
    max_shift: int = 1,
) -> np.ndarray:
    """Rotate by ``angle`` plus a random ±``max_rotation``°, shift by ±``max_shift`` px.

    One interpolation for both rotations (so the image blurs once); values stay in [0, 1].

    >>> img = _digits()[0][0]
    >>> out = augment_image(img, np.random.default_rng(0))
    >>> out.shape, bool(0.0 <= out.min() and out.max() <= 1.0)
    ((8, 8), True)
    """
    turn = angle + rng.uniform(-max_rotation, max_rotation)
    shift = rng.integers(-max_shift, max_shift + 1, size=2)
    out = ndimage.rotate(img, turn, reshape=False, order=1, mode="constant", cval=0.0)
    out = ndimage.shift(out, shift, order=0, mode="constant", cval=0.0)
    return np.clip(out, 0.0, 1.0)


def to_features(img: np.ndarray) -> dict[str, float]:
    return dict(zip(FEATURES, img.ravel().tolist(), strict=True))


def digits_rotate(
    n_events: int = 20000, n_phases: int = 4, max_angle: float = 45.0, seed: int = 0
) -> Iterator[tuple[dict[str, float], int]]:
    """Yield ``(features, label)``: ``n_events`` augmented digits, phase by phase.

    Event ``i`` belongs to phase `phase_of_event(i, n_events, n_phases)`; the same seed gives
    the same stream.

    >>> x, y = next(digits_rotate(n_events=10))
    >>> len(x), sorted(x)[:2], y in range(10)
    (64, ['px0', 'px1'], True)
    """
    if n_phases < 1 or n_events < 0:
        raise ValueError(f"need n_phases >= 1 and n_events >= 0, got {n_phases} and {n_events}")
    images, labels = _split(held_out=False)
    rng = np.random.default_rng([seed, 0])
    for i in range(n_events):
        angle = phase_angle(phase_of_event(i, n_events, n_phases), n_phases, max_angle)
        k = int(rng.integers(len(images)))
        yield to_features(augment_image(images[k], rng, angle=angle)), int(labels[k])


def digits_phase_dataset(
    phase: int,
    n_phases: int = 4,
    max_angle: float = 45.0,
    seed: int = 0,
    n: int | None = None,
) -> tuple[list[dict[str, float]], list[int]]:
    """Held-out data of one phase: images the stream never shows, turned like that phase.

    ``n`` examples cycle through the held-out images in order (default: each one once), each
    augmented like a stream event, seeded by ``seed`` and ``phase``.

    >>> xs, ys = digits_phase_dataset(3)
    >>> len(xs) == len(ys) == 359, len(xs[0])
    (True, 64)
    """
    angle = phase_angle(phase, n_phases, max_angle)
    images, labels = _split(held_out=True)
    n = len(images) if n is None else n
    rng = np.random.default_rng([seed, 1, phase])
    xs, ys = [], []
    for i in range(n):
        k = i % len(images)
        xs.append(to_features(augment_image(images[k], rng, angle=angle)))
        ys.append(int(labels[k]))
    return xs, ys
