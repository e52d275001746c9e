"""CMS145 (MIPS 007) CAD beta-blocker therapy, two groups (LVSD, prior MI): one MeasureReport with both
groups, a summary per group, no claims codes; populations are cross-checked in tests/oracle."""

from __future__ import annotations

from .conftest import run_resources
from .oracle.cms145 import CARVEDILOL, METOPROLOL_TARTRATE, cad
from .oracle.heart import medication


def test_one_report_with_both_groups_and_their_own_denominators(ruleset):
    run = run_resources([*cad(mi_onset="2023-05-01"), medication("bb", METOPROLOL_TARTRATE)], ruleset)
    assert len([r for r in run.reports if "CADBetaBlocker" in r["measure"]]) == 1
    lvsd, mi = (run.counts("CMS145", group=i) for i in range(2))
    assert (lvsd["initial-population"], lvsd["denominator"], lvsd["numerator"]) == (1, 0, 0)
    assert (mi["initial-population"], mi["denominator"], mi["numerator"]) == (1, 1, 1)


def test_lvsd_group_needs_a_beta_blocker_for_lvsd(ruleset):
    tartrate = run_resources([*cad(lvsd=True), medication("bb", METOPROLOL_TARTRATE)], ruleset)
    carvedilol = run_resources([*cad(lvsd=True), medication("bb", CARVEDILOL)], ruleset)
    assert not tartrate.population("CMS145", group=0)["numerator"]
    assert carvedilol.population("CMS145", group=0)["numerator"]


def test_summary_scores_each_group(ruleset):
    run = run_resources([*cad(lvsd=True), medication("bb", CARVEDILOL)], ruleset, report="summary")
    (summary,) = [r for r in run.reports if "CADBetaBlocker" in r["measure"]]
    scores = [g.get("measureScore", {}).get("value") for g in summary["group"]]
    assert scores[0] == 1.0
    assert scores[1] is None  # group 2 has an empty denominator: no score


def test_no_claims_codes_for_an_ehr_only_measure(ruleset):
    run = run_resources([*cad(lvsd=True), medication("bb", CARVEDILOL)], ruleset, program="mips-claims")
    assert run.measure_codes("CMS145") == []
