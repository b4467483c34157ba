"""Statistics: paired t confidence interval on a hand-computed example, uniformity G2."""
import math

import pandas as pd
import pytest

from reports.stats import mean_std, paired_ci, paired_gains, uniform_circle_g2


def test_paired_ci_known_example():
    # differences 1.0, 2.0, 1.5: mean 1.5, sd 0.5, t_{0.975, df=2} = 4.3027 (t table)
    # half-width = 4.3027 * 0.5 / sqrt(3) = 1.2421 -> [0.2579, 2.7421]
    ci = paired_ci([61.0, 64.0, 62.5], [60.0, 62.0, 61.0])
    assert ci.n == 3 and ci.mean == pytest.approx(1.5) and ci.sd == pytest.approx(0.5)
    assert ci.lo == pytest.approx(0.2579, abs=1e-3)
    assert ci.hi == pytest.approx(2.7421, abs=1e-3)
    assert ci.format() == "+1.50 [+0.26, +2.74]"


def test_paired_ci_degenerate():
    one = paired_ci([61.0], [60.0])
    assert one.n == 1 and one.mean == 1.0 and math.isnan(one.lo) and math.isnan(one.hi)
    assert "undefined" in one.note and "CI undefined" in one.format()
    none = paired_ci([], [])
    assert none.n == 0 and "no seed-matched" in none.format()
    with pytest.raises(ValueError):
        paired_ci([1.0, 2.0], [1.0])


def test_paired_gains_excludes_unmatched_seeds():
    df = pd.DataFrame({"method": "m", "hall": [False, False, False, True, True, True],
                       "seed": [0, 1, 2, 0, 1, 3], "top1": [60, 62, 61, 61, 64, 99]})
    g = paired_gains(df, ["method"], df.hall, ~df.hall).iloc[0]
    assert g.n_pairs == 2 and g.gain == pytest.approx(1.5)
    assert g.unmatched == "without:seed=2, with:seed=3"
    # t_{0.975, df=1} = 12.706; sd of (1, 2) = 0.7071 -> half = 12.706 * 0.7071 / sqrt(2) = 6.353
    assert g.hi - g.gain == pytest.approx(6.353, abs=1e-3)


def test_mean_std():
    df = pd.DataFrame({"k": ["a", "a", "b"], "seed": [0, 1, 0], "top1": [1.0, 3.0, 5.0]})
    out = mean_std(df, ["k"]).set_index("k")
    assert out.loc["a", "mean"] == 2.0 and out.loc["a", "std"] == pytest.approx(math.sqrt(2))
    assert out.loc["a", "seeds"] == "0,1" and math.isnan(out.loc["b", "std"])


def test_uniform_circle_reference():
    """The figure's reference line: G2 of the uniform circle, e^-4 I0(4)."""
    assert uniform_circle_g2() == pytest.approx(0.2070, abs=5e-5)
