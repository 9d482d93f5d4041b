"""Claims as data, verdicts computed: the statistics against scipy and by hand, each verdict from
constructed results (holds / does not hold / within noise / unresolved / not tested), claims that
name what a study does not have refused in one line, and every named study's claims, instruments
and seed tables referring to variants and metrics it has."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from lmlab.errors import UserError
from lmlab.study.claims import Claim, check_claims, claim_from_dict, evaluate, verdict_rows
from lmlab.study.expand import plan
from lmlab.study.findings import check_findings
from lmlab.study.measure import failed_variants, measurements, metric_names
from lmlab.study.seed_tables import seed_table_from_dict, side_by_side
from lmlab.study.seeds import STUDIES, get_study
from lmlab.study.verdicts import (FAILS, HOLDS, NOISE, NOT_TESTED, UNRESOLVED, combine, near_verdict, pair_stats)

SEEDS = (0, 1, 2, 3, 4)


def by_seed(values) -> dict[int, float]:
    return dict(zip(SEEDS, values))


def measured(**variants) -> dict:
    return {(v, "best_val_loss"): by_seed(xs) for v, xs in variants.items()}


def claim(test="less", **kw) -> Claim:
    return Claim(id="c", text="c", test=test, **kw)


def test_pair_statistics_equal_scipy_and_the_hand_formulas():
    a, b = [2.0, 2.1, 1.95, 2.05, 2.2], [2.3, 2.35, 2.2, 2.4, 2.33]
    st = pair_stats(by_seed(a), by_seed(b))
    d = [x - y for x, y in zip(a, b)]
    se = sps.tstd(d) / math.sqrt(len(d))
    t = sps.t.ppf(0.975, len(d) - 1)
    assert st.test == "paired t" and st.n == 5
    assert st.p_value == pytest.approx(sps.ttest_rel(a, b).pvalue, rel=1e-12)
    assert (st.ci_low, st.ci_high) == pytest.approx((sum(d) / 5 - t * se, sum(d) / 5 + t * se), rel=1e-12)
    assert st.noise_floor == pytest.approx(math.sqrt((sps.tvar(a) + sps.tvar(b)) / 2), rel=1e-12)
    assert st.detectable == pytest.approx((t + sps.t.ppf(0.8, 4)) * se, rel=1e-12)
    welch = pair_stats({0: 1.0, 1: 1.2, 2: 1.1}, {5: 1.5, 6: 1.4, 7: 1.7, 8: 1.6})  # different seeds: Welch
    assert welch.test == "welch t"
    assert welch.p_value == pytest.approx(sps.ttest_ind([1.0, 1.2, 1.1], [1.5, 1.4, 1.7, 1.6],
                                                        equal_var=False).pvalue, rel=1e-12)


def test_constructed_results_get_each_verdict():
    noise = [0.00, 0.03, -0.02, 0.01, -0.03]
    m = measured(good=[2.0 + e for e in noise], bad=[2.5 + e for e in noise],
                 twin=[2.0 + e + d for e, d in zip(noise, (0.001, -0.002, 0.0015, 0.0, -0.001))],
                 wild=[2.0, 2.8, 1.6, 2.5, 1.7])
    assert evaluate(claim(a="good", b="bad"), m).verdict == HOLDS
    assert evaluate(claim(a="bad", b="good"), m).verdict == FAILS
    greater = evaluate(claim("greater", a="bad", b="good"), m)
    assert greater.verdict == HOLDS and greater.stats[0]["a_mean"] > greater.stats[0]["b_mean"]  # a read first
    assert evaluate(claim("greater", a="good", b="bad"), m).verdict == FAILS
    # a factor: 2.0 is below 0.9 x 2.5 = 2.25 but not below half of 2.5
    assert evaluate(claim(a="good", b="bad", ratio=0.9), m).verdict == HOLDS
    halves = verdict_rows([claim(a="good", b="bad", ratio=0.5)], m)[0]
    assert halves["verdict"] == FAILS and "1.249" in halves["measured"] and "(b x 0.5)" in halves["measured"]
    assert evaluate(claim("greater", a="bad", b="good", ratio=1.2), m).verdict == HOLDS  # 2.5 > 2.4
    assert evaluate(claim(a="twin", b="good"), m).verdict == NOISE  # the interval inside +-noise floor
    unresolved = evaluate(claim(a="wild", b="good"), m)
    assert unresolved.verdict == UNRESOLVED and "detects |a - b| >=" in unresolved.why
    assert evaluate(claim("same", a="twin", b="good"), m).verdict == HOLDS
    assert evaluate(claim("same", a="bad", b="good"), m).verdict == FAILS
    assert evaluate(claim("same", a="wild", b="good"), m).verdict == UNRESOLVED
    assert evaluate(claim("decreasing", chain=["bad", "good"]), m).verdict == HOLDS
    assert evaluate(claim("increasing", chain=["good", "bad"]), m).verdict == HOLDS
    assert evaluate(claim("increasing", chain=["twin", "good", "bad"]), m).verdict == NOISE  # one link in noise
    assert evaluate(claim("increasing", chain=["bad", "good", "twin"]), m).verdict == FAILS


def test_near_compares_the_interval_with_the_band_and_one_seed_its_value():
    assert near_verdict(by_seed([1.0, 1.01, 0.99, 1.0, 1.02]), 1.0, 0.1).verdict == HOLDS
    assert near_verdict(by_seed([1.5, 1.51, 1.49, 1.5, 1.52]), 1.0, 0.1).verdict == FAILS
    assert near_verdict(by_seed([0.8, 1.2, 1.0, 0.7, 1.3]), 1.0, 0.1).verdict == UNRESOLVED
    assert near_verdict({0: 1.05}, 1.0, 0.1).verdict == HOLDS
    assert near_verdict({0: 1.17}, 1.0, 0.1).verdict == FAILS
    assert near_verdict({}, 1.0, 0.1).verdict == NOT_TESTED


def test_one_seed_cannot_decide_a_comparison_and_a_failed_variant_is_not_tested():
    one = {("a", "best_val_loss"): {0: 1.0}, ("b", "best_val_loss"): {0: 2.0}}
    v = evaluate(claim(a="a", b="b"), one)
    assert v.verdict == UNRESOLVED and "no noise floor" in v.why
    m = measured(a=[1, 1.1, 1.2, 1.0, 1.1], b=[2, 2.1, 2.2, 2.0, 2.1])
    rows = verdict_rows([claim(a="a", b="b")], m, failed={"b"})
    assert rows[0]["verdict"] == NOT_TESTED and "variant failed" in rows[0]["why"]
    assert evaluate(claim(a="a:attention.mean_entropy", b="b"), m).verdict == NOT_TESTED  # never measured


def test_combining_parts():
    from lmlab.study.verdicts import Verdict

    parts = {k: Verdict(k, k) for k in (HOLDS, FAILS, NOISE, UNRESOLVED)}
    assert combine([parts[HOLDS], parts[HOLDS]]).verdict == HOLDS
    assert combine([parts[HOLDS], parts[FAILS], parts[UNRESOLVED]]).verdict == FAILS
    assert combine([parts[HOLDS], parts[NOISE]]).verdict == NOISE
    assert combine([parts[HOLDS], parts[UNRESOLVED]]).verdict == UNRESOLVED
    assert combine([]).verdict == NOT_TESTED


def test_measurements_read_runs_epochs_and_instruments_of_finished_runs_only():
    rows = [{"variant": "a", "seed": 0, "status": "done", "best_val_loss": 1.5, "wall_s": 3.0},
            {"variant": "a", "seed": 1, "status": "failed", "best_val_loss": 9.0},
            {"variant": "b", "seed": 0, "status": "failed"}]
    epochs = [{"variant": "a", "seed": 0, "epoch": 2, "val_loss": 1.7, "gap": 0.1, "train_loss": 1.6,
               "val_perplexity": 5.5}]
    records = [{"variant": "a", "seed": 0, "instrument": "attention", "metrics": {"mean_entropy": 1.2,
                                                                                   "bad": float("nan")}}]
    m = measurements(rows, epochs, records)
    assert m[("a", "best_val_loss")] == {0: 1.5}
    assert m[("a", "epoch2.val_loss")] == {0: 1.7}
    assert m[("a", "attention.mean_entropy")] == {0: 1.2}
    assert ("a", "attention.bad") not in m
    assert failed_variants(rows) == {"b"}


def test_claims_that_name_what_the_study_lacks_are_refused_in_one_line():
    metrics = metric_names(2, ["attention.mean_entropy"])
    assert "epoch2.val_loss" in metrics and "epoch3.val_loss" not in metrics
    with pytest.raises(UserError, match=r"claim c names variant 'zz'; the study's variants: a, b"):
        check_claims([claim(a="a", b="zz")], ["a", "b"], metrics, "study s")
    with pytest.raises(UserError, match=r"claim c names metric 'attention.sparsity'"):
        check_claims([claim(a="a:attention.sparsity", b="b")], ["a", "b"], metrics, "study s")
    with pytest.raises(UserError, match=r"unknown claim test 'bigger'; valid claim tests: decreasing"):
        claim_from_dict({"id": "c", "text": "t", "test": "bigger"}, "s")
    with pytest.raises(UserError, match=r"claim c \(near\) needs `value`"):
        claim_from_dict({"id": "c", "text": "t", "test": "near", "a": "x"}, "s")
    with pytest.raises(UserError, match=r"unknown claim field\(s\) verdict"):
        claim_from_dict({"id": "c", "text": "t", "test": "less", "a": "x", "b": "y", "verdict": "holds"}, "s")
    with pytest.raises(UserError, match=r"claim c: ratio -1 must be a positive number"):
        claim_from_dict({"id": "c", "text": "t", "test": "less", "a": "x", "b": "y", "ratio": -1}, "s")


def test_seed_tables_set_the_seeds_numbers_beside_ours():
    t = seed_table_from_dict({"title": "T", "source": "x.md, Results", "columns": ["model", "val loss"],
                              "rows": [["A", 3.1], ["B", 3.4]], "variants": ["a", "b"],
                              "ours": {"val loss": "best_val_loss"}}, "s")
    rows = side_by_side(t, measured(a=[1.0, 1.2, 1.1, 1.0, 1.2], b=[2.0] * 5))
    assert rows[0] == {"model": "A", "val loss": 3.1, "val loss · lmlab": "1.1 ± 0.12"}
    assert rows[1]["val loss · lmlab"] == "2 ± 0"
    with pytest.raises(UserError, match="every row needs 2 cells"):
        seed_table_from_dict({"title": "T", "source": "s", "columns": ["a", "b"], "rows": [[1]]}, "s")


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_every_named_study_refers_to_variants_and_metrics_it_has(name):
    for size in STUDIES[name].sizes:
        study = get_study(name, size)
        runs = plan(study)
        found = check_findings(study, list(dict.fromkeys(r.variant.slug for r in runs)))
        if size == "cpu":  # the seed studies are judged at cpu size: they declare what they test
            assert found.claims and found.seed_tables, f"{name} declares no claims or seed tables"
