"""Gi* hot spots (webmap.analysis.hotspots): a known cluster is found where it is, complete spatial randomness
flags (almost) nothing after the FDR correction, and the numbers are esda's own on the same weights."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from webmap.analysis import hotspots
from webmap.analysis.grid import make_grid

pytestmark = pytest.mark.usefixtures("warm_esda")

SIDE = 20  # a 20 x 20 lattice of 500 m squares: 400 cells, all whole (no cropping)


@pytest.fixture(scope="module")
def square_grid():
    return make_grid(shapely.box(0, 0, SIDE * 500, SIDE * 500), cell_m=500, shape="square")


def _cell_of(grid, col, row):
    """Cell number of the square at (col, row), counted from the south-west corner."""
    return int(grid.lookup(np.array([col]), np.array([row]))[0])


def test_a_known_cluster_is_found_hot_at_99_where_it_is(square_grid):
    grid = square_grid
    rng = np.random.default_rng(1)
    counts = rng.poisson(1.0, len(grid)).astype(float)  # background: 1 incident per cell on average
    cluster = [_cell_of(grid, c, r) for c in (9, 10, 11) for r in (9, 10, 11)]
    counts[cluster] += 12  # a 3 x 3 block with 13 a cell
    result = hotspots.local_gi_star(counts, grid.weights(), permutations=999, seed=7)

    centre = _cell_of(grid, 10, 10)
    assert result.hotspot[centre] == "hot" and result.confidence[centre] == 99
    assert all(result.hotspot[i] == "hot" for i in cluster)
    # every hot cell is in the block or touches it (its Gi* window overlaps the block), none elsewhere
    near = {_cell_of(grid, c, r) for c in range(8, 13) for r in range(8, 13)}
    hot = set(np.flatnonzero(result.hotspot == "hot").tolist())
    assert hot <= near and len(hot) >= 9
    assert (result.hotspot[list(set(range(len(grid))) - near)] == "none").all()
    # z at the centre by the formula: G* over 9 cells of 13 against a background of mean ~1
    assert result.z[centre] > 10


@pytest.mark.parametrize("seed,mean", [(11, 5.0), (12, 5.0), (13, 0.5), (14, 0.5), (15, 0.05)])
def test_complete_spatial_randomness_flags_almost_nothing(square_grid, seed, mean):
    grid = square_grid
    rng = np.random.default_rng(seed)
    # CSR: points uniform over the square city, counted in their cells
    n = int(mean * len(grid))
    x = rng.uniform(0, SIDE * 500, n)
    y = rng.uniform(0, SIDE * 500, n)
    cell = grid.locate(x, y)
    assert (cell >= 0).all()
    counts = np.bincount(cell, minlength=len(grid)).astype(float)
    result = hotspots.local_gi_star(counts, grid.weights(), permutations=999, seed=seed)
    flagged = int((result.hotspot != "none").sum())
    assert flagged <= 2, f"{flagged} of {len(grid)} cells flagged on random points"
    if mean >= 0.5:  # without the correction many more cells pass p < 0.10: the correction removes them
        assert int((result.p < 0.10).sum()) > 10 * max(flagged, 1)


def test_z_and_p_equal_esdas_on_the_same_weights(square_grid):
    """Our Gi* is esda's: the same G*, z and pseudo p as esda.G_Local called directly on libpysal's queen
    weights, and p worked out here from esda's own permutations with scipy's Pearson III distribution."""
    import warnings

    import geopandas as gpd
    from libpysal.weights import Queen
    from scipy.stats import false_discovery_control, pearson3, skew

    esda = hotspots._import_esda()
    grid = square_grid
    rng = np.random.default_rng(3)
    y = rng.gamma(2.0, 1.5, len(grid))  # continuous: no ties between G* and its permutations
    y[[_cell_of(grid, c, r) for c in (3, 4) for r in (3, 4)]] += 9  # and a small cluster, so some p are tiny
    # esda on libpysal's own queen contiguity of the cell polygons (built independently of our lattice)
    w = Queen.from_dataframe(gpd.GeoDataFrame(geometry=grid.polygons), use_index=False, silence_warnings=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = esda.G_Local(y, w, transform="B", star=True, permutations=999, seed=5, n_jobs=1)
    ours = hotspots.local_gi_star(y, grid.weights(), permutations=999, seed=5)
    np.testing.assert_allclose(ours.gi, reference.Gs, rtol=1e-12)
    np.testing.assert_allclose(ours.z, reference.z_sim, rtol=1e-9)
    np.testing.assert_allclose(ours.p_sim, reference.p_sim, rtol=1e-6)  # no ties: esda's pseudo p (float32)

    sims, obs = reference.rGs, reference.Gs
    share_up = (sims >= obs[:, None]).mean(axis=1)
    share_low = (sims <= obs[:, None]).mean(axis=1)
    g = skew(sims, axis=1)
    fitted_up = pearson3.sf(obs, g, loc=sims.mean(axis=1), scale=sims.std(axis=1))
    fitted_low = pearson3.cdf(obs, g, loc=sims.mean(axis=1), scale=sims.std(axis=1))
    far = np.minimum(share_up, share_low) < 0.05  # where the fitted tail is consulted
    expected = np.where(far, 2 * np.minimum(np.maximum(share_up, fitted_up), np.maximum(share_low, fitted_low)),
                        2 * np.minimum(share_up, share_low))
    np.testing.assert_allclose(ours.p, np.minimum(1, expected), rtol=1e-7, atol=1e-15)
    np.testing.assert_allclose(ours.q, false_discovery_control(np.minimum(1, expected)), rtol=1e-7, atol=1e-15)
    assert (ours.p[far & (share_up == 0)] < 1 / 1000).any()  # beyond every permutation: below 1/(perm + 1)
    assert set(np.flatnonzero(ours.hotspot == "hot")) >= {_cell_of(grid, 3, 3), _cell_of(grid, 4, 4)}


def test_an_empty_neighbourhood_is_not_a_cold_spot_by_ties(square_grid):
    """esda counts ties on the upper side only: G* = 0 with most permutations also 0 gets its smallest p."""
    import warnings

    esda = hotspots._import_esda()
    grid = square_grid
    counts = np.zeros(len(grid))
    counts[_cell_of(grid, 0, 0)] = 1.0  # one incident in two corners, nothing anywhere else
    counts[_cell_of(grid, 19, 19)] = 1.0
    result = hotspots.local_gi_star(counts, grid.weights(), permutations=99, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = esda.G_Local(counts, grid.weights(), transform="B", star=True, permutations=99, seed=1, n_jobs=1)
    empty = _cell_of(grid, 10, 10)
    assert reference.p_sim[empty] == pytest.approx(0.01)  # esda: "as extreme as it gets"
    assert result.p_sim[empty] > 0.5  # here: most permutations tie at 0, so nothing unusual
    assert (result.hotspot == "none").all()


def test_islands_and_flat_inputs_are_never_flagged():
    from libpysal.graph import Graph

    # cells 0-1-2 in a row and cell 3 alone
    graph = Graph.from_arrays(np.array([0, 1, 1, 2, 3]), np.array([1, 0, 2, 1, 3]),
                              np.array([1.0, 1, 1, 1, 0])).assign_self_weight(1.0)
    result = hotspots.local_gi_star(np.array([5.0, 6.0, 7.0, 40.0]), graph, permutations=99, seed=1)
    assert result.z[3] == 0 and result.p[3] == 1 and result.hotspot[3] == "none"
    flat = hotspots.local_gi_star(np.zeros(4), graph, permutations=99, seed=1)
    assert (flat.hotspot == "none").all() and (flat.p == 1).all()


def test_benjamini_hochberg_by_hand():
    # sorted p 0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205 (m = 8): p x m / rank =
    # 0.008, 0.032, 0.104, 0.082, 0.0672, 0.08, 0.0846, 0.205; running minimum from the top
    p = [0.042, 0.001, 0.205, 0.039, 0.008, 0.06, 0.041, 0.074]
    q = hotspots.bh_fdr(p)
    expected = [0.0672, 0.008, 0.205, 0.0672, 0.032, 0.08, 0.0672, 0.074 * 8 / 7]
    np.testing.assert_allclose(q, expected, rtol=1e-9)


def test_confidence_classes_follow_q_and_the_sign_of_z():
    hot, conf = hotspots.classify([4, 3, 2, -3, 2, 0.0], [0.001, 0.03, 0.08, 0.009, 0.2, 0.0])
    assert hot.tolist() == ["hot", "hot", "hot", "cold", "none", "none"]
    assert conf.tolist() == [99, 95, 90, 99, 0, 0]
    # a stricter alpha caps the classes: q 0.08 is no longer significant at alpha 0.05
    hot, conf = hotspots.classify([2.0], [0.08], fdr_alpha=0.05)
    assert hot.tolist() == ["none"] and conf.tolist() == [0]


def test_warm_up_is_once_per_process():
    assert hotspots.is_warm()
    assert hotspots.warm_up() == 0.0


def test_numba_cache_dir_falls_back_when_unwritable(tmp_path, monkeypatch):
    """A cache folder that cannot be made (here: below a plain file, which even root cannot) disables the
    cache instead of failing the import."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(blocker / "numba"))
    assert hotspots._numba_cache_dir() is None
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "ok"))
    assert hotspots._numba_cache_dir() == str(tmp_path / "ok")


def test_tail_counts_kernel_equals_numpy():
    """The compiled one-pass tail counts are numpy's, ties and NaN included (exact integers)."""
    rng = np.random.default_rng(5)
    sims = rng.integers(0, 4, size=(300, 99)).astype(float)
    sims[0, :10] = np.nan
    obs = rng.integers(0, 4, size=300).astype(float)
    obs[1] = np.nan
    got = hotspots._tail_counts()(obs, sims)
    want = hotspots._tail_counts_numpy(obs, sims)
    assert hotspots._tail_counts() is not hotspots._tail_counts_numpy  # numba, as installed
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
