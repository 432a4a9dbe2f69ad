"""Hot and cold spots: Getis-Ord Gi* (esda ``G_Local(star=True)``) with permutation inference and a
Benjamini-Hochberg false-discovery-rate correction, in confidence classes 90/95/99 %.

esda's permutation inference is compiled by numba the first time it runs in a process (about 20-25 s).
:func:`warm_up` pays that once (call it at server start-up in a background thread, or from the
``warm_esda`` test fixture); :func:`is_warm` says whether it is done. esda does not ask numba to keep
the compiled code on disk, so :func:`_import_esda` imports it with numba's on-disk cache switched on
(see there): later processes load the compiled code in a few seconds instead of recompiling.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["GiResult", "local_gi_star", "permutation_tails", "bh_fdr", "classify", "warm_up", "is_warm",
           "CONFIDENCE_LEVELS"]

#: confidence class -> largest FDR-adjusted p-value (q) that reaches it
CONFIDENCE_LEVELS = ((99, 0.01), (95, 0.05), (90, 0.10))

#: esda functions that take another compiled function as an argument: numba keys their cache on that
#: function's identity, which changes in every process, so caching them would only pile up files
_NOT_CACHEABLE = frozenset({"compute_chunk", "parallel_crand"})

_esda = None
_IMPORT_LOCK = threading.Lock()
_WARM = threading.Event()
_WARM_LOCK = threading.Lock()


def _numba_cache_dir() -> str | None:
    """A writable folder for numba's cache, or None: NUMBA_CACHE_DIR if set, else ~/.cache/webmap/numba."""
    folder = os.environ.get("NUMBA_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "webmap", "numba")
    try:
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, f".probe-{os.getpid()}")
        with open(probe, "w") as fh:
            fh.write("")
        os.remove(probe)
    except OSError:
        return None
    return folder


def _import_esda():
    """Import esda with numba's on-disk cache on for esda's own functions, and return the module.

    Why: esda decorates its permutation kernels with ``@njit`` without ``cache=True``, so every process
    recompiles them (about 25 s). While esda is being imported, ``numba.njit`` defaults to ``cache=True``;
    it is restored right after, so no other numba user is affected. The cache lives in NUMBA_CACHE_DIR
    (default ~/.cache/webmap/numba); when that folder cannot be written the trick is skipped and esda is
    imported as it is (slower first use, same results).
    """
    global _esda
    with _IMPORT_LOCK:
        if _esda is not None:
            return _esda
        import sys

        folder = None if "esda" in sys.modules else _numba_cache_dir()
        if folder is None:
            import esda  # already imported elsewhere, or no writable cache: nothing to patch
        else:
            os.environ.setdefault("NUMBA_CACHE_DIR", folder)
            import numba

            numba.config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]
            original = numba.njit

            def njit_cached(*args, **kwargs):
                if args and callable(args[0]) and len(args) == 1 and not kwargs:  # bare @njit
                    return original(args[0], cache=args[0].__name__ not in _NOT_CACHEABLE)

                def decorate(fn):
                    return original(*args, **{"cache": fn.__name__ not in _NOT_CACHEABLE, **kwargs})(fn)

                return decorate

            numba.njit = njit_cached
            try:
                import esda
            finally:
                numba.njit = original
        _esda = esda
        return esda


@dataclass
class GiResult:
    """Gi* of every observation: esda's statistic, the permutation z and p, FDR q, and the class."""

    gi: np.ndarray           # G*_i as esda computes it (``Gs``)
    z: np.ndarray            # (G*_i - mean of permutations) / sd of permutations (esda ``z_sim``)
    p: np.ndarray            # two-sided p-value from the permutations (see local_gi_star)
    q: np.ndarray            # Benjamini-Hochberg adjusted p
    p_sim: np.ndarray        # plain permutation pseudo p-value, one-sided, ties counted (for reference)
    hotspot: np.ndarray      # "hot" | "cold" | "none"
    confidence: np.ndarray   # 99 | 95 | 90 | 0
    permutations: int
    seed: int


#: below this |skewness| the permutation distribution's tail is taken as normal
_SKEW_EPS = 1e-6
#: only observations whose permutation tail holds less than this share need the fitted tail: any p-value
#: above 2 x this share can never be significant (q >= p), so the empirical tail is enough there
_FIT_BELOW = 0.05


def _tail_counts_numpy(obs, sims):
    return (sims >= obs[:, None]).sum(axis=1), (sims <= obs[:, None]).sum(axis=1)


def _tail_counts_loop(obs, sims):  # pragma: no cover - compiled by numba in _tail_counts
    n, m = sims.shape
    at_least = np.zeros(n, dtype=np.int64)
    at_most = np.zeros(n, dtype=np.int64)
    for i in range(n):
        o = obs[i]
        up = 0
        low = 0
        for j in range(m):
            v = sims[i, j]
            if v >= o:
                up += 1
            if v <= o:
                low += 1
        at_least[i] = up
        at_most[i] = low
    return at_least, at_most


_TAIL_KERNEL = None


def _tail_counts():
    """``(sims >= obs).sum(axis=1), (sims <= obs).sum(axis=1)`` in one pass over the permutations.

    Why: with 999 permutations of ~7,000 cells numpy makes two boolean arrays of 7 million and sums them
    row by row (~50 ms, a tenth of esda's own time); a numba loop reads the permutations once (~5 ms).
    Integer counts, so the result is exactly numpy's. Compiled with numba's on-disk cache next to esda's
    (see :func:`_import_esda`) and during :func:`warm_up`; numpy when numba is missing.
    """
    global _TAIL_KERNEL
    if _TAIL_KERNEL is None:
        _TAIL_KERNEL = compiled(_tail_counts_loop) or _tail_counts_numpy
    return _TAIL_KERNEL


def compiled(fn):
    """``fn`` compiled by numba (``njit``, nogil) with the on-disk cache esda's code uses, or None without
    numba. For the project's own small loops (here and in ``webmap.analysis.priority``); they are compiled,
    or loaded from the cache, by :func:`warm_up`."""
    try:
        import numba
    except ImportError:  # pragma: no cover - numba comes with the project's esda
        return None
    _import_esda()  # sets numba's cache folder (NUMBA_CACHE_DIR) when it can be written
    cache = bool(os.environ.get("NUMBA_CACHE_DIR")) and _numba_cache_dir() is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's "cannot cache" note where the cache is not writable
        return numba.njit(cache=cache, nogil=True)(fn)


def permutation_tails(obs, sims, mean=None, sd=None, *, with_shares=False):
    """Upper and lower tail probabilities of ``obs`` under its permutations ``sims`` (n, permutations).

    Each tail is the larger of (a) the share of permutations at least as extreme (ties included) and (b)
    the tail of a Pearson type III distribution (a gamma, or its mirror image, with the permutations' own
    mean, standard deviation and skewness; the normal when they are symmetric). (a) is the permutation
    test itself; (b) says how far beyond the permutations an observation lies, without pretending that a
    skewed distribution of sparse counts is normal.

    >>> sims = np.array([[0.0, 0.0, 0.0, 1.0]])
    >>> [float(t[0]) for t in permutation_tails(np.array([0.0]), sims)]
    [1.0, 0.75]
    """
    from scipy.special import gammainc, gammaincc
    from scipy.stats import norm

    obs = np.asarray(obs, dtype=float)
    sims = np.asarray(sims, dtype=float)
    perms = sims.shape[1]
    at_least, at_most = _tail_counts()(obs, sims)
    upper = share_up = at_least / perms
    lower = share_low = at_most / perms
    fit = np.flatnonzero(np.minimum(upper, lower) < _FIT_BELOW)
    if len(fit):
        dev = sims[fit]  # a copy (fancy indexing): made the deviations in place below
        if mean is None or sd is None:  # esda has them already (EG_sim, seG_sim): same formulas
            mean = dev.mean(axis=1)
            sd = np.sqrt(((dev - mean[:, None]) ** 2).mean(axis=1))
        else:
            mean, sd = np.asarray(mean, dtype=float)[fit], np.asarray(sd, dtype=float)[fit]
        dev -= mean[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            skew = np.einsum("ij,ij,ij->i", dev, dev, dev) / perms / sd ** 3  # third moment in one pass
            z = (obs[fit] - mean) / sd
        ok = sd > 0
        up = np.ones(len(fit))
        lo = np.ones(len(fit))
        normal = ok & (np.abs(skew) <= _SKEW_EPS)
        up[normal], lo[normal] = norm.sf(z[normal]), norm.cdf(z[normal])
        for sign in (1.0, -1.0):  # right-skewed: a gamma; left-skewed: a gamma mirrored
            idx = ok & ~normal & (np.sign(skew) == sign)
            if idx.any():
                shape = 4.0 / skew[idx] ** 2
                x = np.maximum(shape + sign * z[idx] * np.sqrt(shape), 0.0)
                far, near = gammaincc(shape, x), gammainc(shape, x)
                up[idx], lo[idx] = (far, near) if sign > 0 else (near, far)
        upper, lower = upper.copy(), lower.copy()
        upper[fit] = np.maximum(upper[fit], up)
        lower[fit] = np.maximum(lower[fit], lo)
    if with_shares:
        return upper, lower, share_up, share_low
    return upper, lower


def local_gi_star(y, w, *, permutations: int = 999, seed: int = 12345, fdr_alpha: float = 0.10,
                  transform: str = "B", n_jobs: int = 1) -> GiResult:
    """Getis-Ord Gi* of ``y`` on weights ``w`` with conditional permutation inference and BH FDR.

    Parameters
    ----------
    y : array of float, shape (n,)
        Values per observation (incidents per km² of each cell).
    w : libpysal.graph.Graph or libpysal.weights.W
        Contiguity of the observations. Without self-weights esda adds them (Gi*); a Graph that already has
        them (``Grid.weights()``) is used as it is, which saves esda rebuilding it.
    permutations : int
        Conditional permutations (esda): the null distribution of each G*_i.
    seed : int
        Seed of esda's permutations: same inputs, same result.
    fdr_alpha : float
        Largest FDR-adjusted p-value still called significant (90 % class when 0.10).
    transform : {"B", "R"}
        Binary weights (the classic Gi*, default) or row-standardised.
    n_jobs : int
        esda's workers. 1 (default): in this process; more starts joblib processes that each compile numba.

    Returns
    -------
    GiResult

    Notes
    -----
    G* and ``z`` are esda's (``Gs``, ``z_sim``: G* standardised by the mean and standard deviation of its
    own permutations). ``p`` is two-sided, 2 x the smaller tail of :func:`permutation_tails`: the share
    of permutations at least as extreme, or, where an observation lies beyond (almost) all of them, the
    tail of a gamma fitted to them. Why not esda's pseudo p-value alone: with 999 permutations it is
    never below 0.001, and after the Benjamini-Hochberg correction over thousands of cells no cell could
    reach even 90 %. Why not esda's normal ``p_z_sim``: incident counts are sparse and the permutation
    distribution is skewed, so the normal tail is far too thin and random points come out as "hot spots"
    (the tests check both). esda's pseudo p-value is kept in ``p_sim``, with ties counted on both sides
    (esda counts them on the upper side only, which gives an empty neighbourhood the smallest p-value).
    Observations without neighbours get z = 0 and p = 1.
    """
    esda = _import_esda()
    y = np.asarray(y, dtype=float).ravel()
    n = len(y)
    if n < 3 or not np.isfinite(y).all() or y.sum() <= 0:
        ones = np.ones(n)
        return GiResult(np.full(n, np.nan), np.zeros(n), ones, ones, ones.copy(), np.full(n, "none", dtype=object),
                        np.zeros(n, dtype=int), permutations, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # island notes, esda's DeprecationWarning about `alternative`
        lg = esda.G_Local(y, w, transform=transform, permutations=permutations, star=True,
                          keep_simulations=True, n_jobs=n_jobs, seed=seed)
    _WARM.set()  # the numba code is compiled in this process now
    sims = lg.rGs  # (n, permutations)
    obs = np.asarray(lg.Gs, dtype=float)
    upper, lower, share_up, share_low = permutation_tails(obs, sims, lg.EG_sim, lg.seG_sim, with_shares=True)
    # esda's pseudo p-value with ties on both sides: (1 + permutations at least as extreme) / (1 + permutations)
    p_sim = (np.rint(np.minimum(share_up, share_low) * permutations) + 1.0) / (permutations + 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.asarray(lg.z_sim, dtype=float)
    adjacency = w.sparse.tocsr(copy=True)
    adjacency.setdiag(0)
    adjacency.eliminate_zeros()
    islands = np.diff(adjacency.indptr) == 0
    flat = ~np.isfinite(z) | islands  # every permutation equal, or no neighbour: no evidence either way
    z = np.where(flat, 0.0, z)
    p = np.where(flat, 1.0, np.minimum(1.0, 2.0 * np.minimum(upper, lower)))
    p_sim = np.where(islands, 1.0, p_sim)
    q = bh_fdr(p)
    direction = np.where(flat, 0.0, np.where(upper < lower, 1.0, -1.0))
    hotspot, confidence = classify(direction, q, fdr_alpha)
    return GiResult(obs, z, p, q, p_sim, hotspot, confidence, permutations, seed)


def bh_fdr(p) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), via ``scipy.stats.false_discovery_control``.

    By hand: sorted p 0.01, 0.03, 0.04, 0.5 times m/rank = 0.04, 0.06, 0.0533, 0.5, then the running
    minimum from the top.

    >>> bh_fdr([0.01, 0.04, 0.03, 0.5]).round(4).tolist()
    [0.04, 0.0533, 0.0533, 0.5]
    """
    from scipy.stats import false_discovery_control

    p = np.asarray(p, dtype=float)
    if p.size == 0:
        return p.copy()
    return false_discovery_control(np.clip(p, 0.0, 1.0), method="bh")


def classify(z, q, fdr_alpha: float = 0.10):
    """("hot"/"cold"/"none", 99/95/90/0) from the direction (sign of ``z``) and the adjusted p-value ``q``.

    A class is reached when q <= 0.01 (99 %), 0.05 (95 %) or 0.10 (90 %), and never beyond ``fdr_alpha``.

    >>> classify([3.0, -2.5, 2.0, 1.0, 0.0], [0.005, 0.04, 0.09, 0.2, 0.001])
    (array(['hot', 'cold', 'hot', 'none', 'none'], dtype=object), array([99, 95, 90,  0,  0]))
    """
    z = np.asarray(z, dtype=float)
    q = np.asarray(q, dtype=float)
    confidence = np.zeros(len(q), dtype=int)
    for level, limit in sorted(CONFIDENCE_LEVELS, key=lambda item: -item[1]):
        confidence[(q <= min(limit, fdr_alpha) + 1e-12)] = level
    hot = (confidence > 0) & (z > 0)
    cold = (confidence > 0) & (z < 0)
    confidence[~(hot | cold)] = 0
    hotspot = np.full(len(q), "none", dtype=object)
    hotspot[hot] = "hot"
    hotspot[cold] = "cold"
    return hotspot, confidence


def warm_up() -> float:
    """Compile (or load from the cache) esda's numba code for Gi*, once per process; returns seconds spent."""
    import time

    started = time.perf_counter()
    with _WARM_LOCK:
        if _WARM.is_set():
            return 0.0
        from libpysal.graph import Graph
        from libpysal.weights import lat2W

        # the same kind of weights as the grid's (a Graph with self-weights), so numba compiles what is used
        w = Graph.from_W(lat2W(4, 4)).assign_self_weight(1.0)
        local_gi_star(np.arange(16, dtype=float), w, permutations=9, seed=1)  # esda's and the tail counts
        from webmap.analysis.priority import warm_kernels

        warm_kernels()  # the incident counting loops
        _WARM.set()
    return time.perf_counter() - started


def is_warm() -> bool:
    """True once :func:`warm_up` (or a first Gi* computation through it) has finished in this process."""
    return _WARM.is_set()
