"""Nearest neighbours and weighted k-means on many small point sets at once (numpy only).

Used by scarlet_moon.data.pixels for the palette snap and the per-sprite colour cap. Points are
channels first: x is 3 x S x M, S sets (sprites) of M points each (colours in Lab or RGB), rows
padded at the end where sets differ in size. Every index returned (nearest targets, seeds,
representatives) is the one the per-sprite loop of numpy calls that this replaced finds
(tests/pixels_reference.py keeps that loop, tests/test_pixels.py compares), and the centres are
the same floats (but for the sign of a zero): where a float result could depend on the order of
operations, the order is the same (see sq_dist, lloyd), and the fast nearest-neighbour search
falls back on the exact distances wherever it could disagree with them (see nearest).
"""

from __future__ import annotations

import numpy as np

TIE = 1e-6  # nearest: a lead smaller than this in the expanded distances is checked exactly


def sq_dist(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Squared distances: x 3 x S x P, t 3 x S x Q -> S x P x Q.

    The float operations of the per-sprite ((x - t) ** 2).sum(-1): numpy adds a trailing axis
    of 3 left to right, (dx² + dy²) + dz², so argmin ties fall as they always did."""
    d = np.square(x[0][:, :, None] - t[0][:, None, :])
    d += np.square(x[1][:, :, None] - t[1][:, None, :])
    d += np.square(x[2][:, :, None] - t[2][:, None, :])
    return d


def _expanded(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """|t|² - 2 x.t, the squared distance less |x|², as one stacked matmul (BLAS, 5x faster
    than sq_dist): x 3 x S x P, t 3 x S x Q -> Q x S x P (target-major: cheap reductions)."""
    s, p, q = x.shape[1], x.shape[2], t.shape[2]
    xa = np.ones((s, 4, p))  # [x, 1]
    xa[:, :3] = x.transpose(1, 0, 2)
    ta = np.empty((s, q, 4))  # [-2t, |t|²]
    ta[..., :3] = -2.0 * t.transpose(1, 2, 0)
    ta[..., 3] = (np.square(t[0]) + np.square(t[1])) + np.square(t[2])
    out = np.empty((q, s, p))
    np.matmul(ta, xa, out=out.transpose(1, 0, 2))
    return out


def nearest(x: np.ndarray, t: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """For each point of x (3 x S x P), its nearest target in t (3 x S x Q; `valid` S x Q, False:
    not a candidate): S x P indices, exactly sq_dist(x, t).argmin(-1), first index on ties.

    Searched in _expanded: plus |x|² (the same for all targets of a point) it is within 1e-9 of
    sq_dist (squared Lab or RGB distances are < 1e6, both are off by a few roundings of 2^-53
    relative), so a target that leads all others there by more than TIE leads them in sq_dist
    too. The few points whose best two are closer (ties, near-ties) get sq_dist itself."""
    a = _expanded(x, t)  # Q x S x P
    if valid is not None:
        a[~valid.T] = np.inf
    near = (a <= a.min(0) + TIE).view(np.uint8)  # Q x S x P: 1 at the best and ties
    dt = np.uint8 if len(a) <= 256 else np.int64  # only a count of 1 is used below
    count = np.add.reduce(near, 0, dtype=dt)
    idx = np.add.reduce(near * np.arange(len(a), dtype=dt)[:, None, None], 0, dtype=dt).astype(np.int64)
    s, p = np.nonzero(count != 1)  # ties and near-ties: exact
    if len(s):
        d = sq_dist(x[:, s, p][:, :, None], t[:, s])[:, 0]  # F x Q
        if valid is not None:
            d[~valid[s]] = np.inf
        idx[s, p] = d.argmin(1)
    return idx


def farthest_seeds(x: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    """k seeds per set, S x k column indices: the heaviest point (first column on ties), then
    k - 1 times the point with the largest weight x squared distance to its nearest seed (first
    column on ties). x 3 x S x M, w S x M (0 on padding)."""
    rows = np.arange(w.shape[0])
    chosen = [w.argmax(1)]
    d = sq_dist(x, x[:, rows, chosen[0]][:, :, None])[..., 0]  # S x M
    for _ in range(k - 1):
        nxt = (d * w).argmax(1)  # far away and heavy
        chosen.append(nxt)
        d = np.minimum(d, sq_dist(x, x[:, rows, nxt][:, :, None])[..., 0])
    return np.stack(chosen, 1)


def lloyd(x: np.ndarray, w: np.ndarray, centers: np.ndarray, iters: int) -> np.ndarray:
    """Weighted Lloyd iterations; x 3 x S x M, w S x M, centers 3 x S x k -> 3 x S x k.

    A set stops at the first update that is np.allclose to its centres and keeps those, as the
    per-sprite loop did; the others go on (at most `iters` updates). Cluster sums are np.bincount
    sums, which add in column order like the per-sprite (pts[m] * counts[m]).sum(0); weights are
    integer counts, so their sums are exact; padding (weight 0, last in its row) adds 0.0. (A
    zero sum may come out +0.0 where numpy gave -0.0: no distance can tell them apart.)"""
    centers = centers.copy()
    xw = x * w  # 3 x S x M
    live = np.arange(w.shape[0])  # sets still iterating
    k = centers.shape[2]
    for _ in range(iters):
        cs = centers[:, live]  # 3 x S' x k
        lab = nearest(x[:, live], cs)  # S' x M: nearest centre
        flat = (lab + k * np.arange(len(live))[:, None]).ravel()  # set-major, column order
        total = np.bincount(flat, w[live].ravel(), cs[0].size).reshape(cs[0].shape)
        new = cs.copy()  # empty clusters stay put
        for c in range(3):
            sums = np.bincount(flat, xw[c, live].ravel(), cs[0].size).reshape(cs[0].shape)
            np.divide(sums, total, out=new[c], where=total > 0)
        done = (np.abs(new - cs) <= 1e-08 + 1e-05 * np.abs(cs)).all((0, 2))  # np.allclose's test
        centers[:, live[~done]] = new[:, ~done]
        live = live[~done]
        if not len(live):
            break
    return centers


def kmeans_reps(x: np.ndarray, w: np.ndarray, valid: np.ndarray, k: int, iters: int = 20) -> np.ndarray:
    """Weighted k-means of each set (farthest_seeds, lloyd), each centre then snapped to its
    nearest point of the set: S x k column indices (repeats possible). x 3 x S x M; w, valid
    S x M (padding: weight 0, not valid); every set needs more than k valid points."""
    rows = np.arange(w.shape[0])[:, None]
    centers = lloyd(x, w, x[:, rows, farthest_seeds(x, w, k)], iters)
    return nearest(centers, x, valid)
