"""Fig 5 draws the data: the angle density follows the cluster width; panels in the paper's order."""
import numpy as np
import pytest
from reports_fixtures import make_run

from reports.aggregate import collect
from reports.figures import angle_density, angle_grid, circular_bandwidth, uniformity_figures


def _fwhm(angles):
    grid = angle_grid(angles, circular_bandwidth(angles))
    dens = angle_density(angles, grid)
    above = grid[dens >= dens.max() / 2]
    return above.max() - above.min()


@pytest.mark.parametrize("sigma", [0.01, 0.00075])
def test_narrow_cluster_draws_a_narrow_peak(sigma):
    """A Gaussian cluster's FWHM is 2.355 sigma; the kernel widens it only a little (the old KDE drew
    ~0.37 rad for both clusters, whatever their width)."""
    angles = np.random.default_rng(0).normal(1.0, sigma, 2000)
    assert 2.355 * sigma <= _fwhm(angles) <= 1.5 * 2.355 * sigma


def test_density_integrates_to_one_and_wraps():
    angles = np.random.default_rng(1).normal(np.pi - 0.05, 0.1, 3000)  # straddles +-pi
    grid = np.linspace(-np.pi, np.pi, 20001)
    dens = angle_density(angles, grid)
    assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=1e-3)
    assert dens[0] == pytest.approx(dens[-1]) and dens[0] > 1.0  # mass on both sides of the seam


def test_fig5_panels_baseline_first_no_empty_slots_collapse_flagged(tmp_path):
    make_run(tmp_path, "hal", suite="fig5", hallucinator=True, features=True, row="mocov2-hal")
    make_run(tmp_path, "base", suite="fig5", features=True, row="mocov2", g2=0.99)
    coll = collect(tmp_path, suite="fig5")
    [(title, fig)] = uniformity_figures(coll.runs)
    tops = [ax for ax in fig.axes if ax.get_title()]
    assert len(fig.axes) == 4 and len(tops) == 2  # two runs: two columns, no empty slot
    assert tops[0].get_title().startswith("MoCoV2 baseline") and "COLLAPSED" in tops[0].get_title()
    assert "COLLAPSED" not in tops[1].get_title() and "G2 (Eq 6) = 0.2500" in tops[1].get_title()
    problems = coll.problems
    assert problems.reason.str.contains("collapsed embedding").sum() == 1
    assert not problems.reason.str.contains("invalid top1").any()  # features_2d is not a top-1 probe
