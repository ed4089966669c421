"""SQL models run in the order their SQL declares (what each reads), not by name prefix."""

from __future__ import annotations

import pytest

from pipelines.models import Model, in_dependency_order, mart_models


def test_a_model_runs_after_what_it_reads_whatever_the_names() -> None:
    report = Model(
        "a_report", "marts", "-- reads marts.b_other in a comment only\nselect * from marts.z_fact"
    )
    fact = Model("z_fact", "marts", "select 1 from intermediate.int_x join ref.instrument using (k)")
    other = Model("b_other", "marts", "select 2")
    assert fact.reads == {"intermediate.int_x", "ref.instrument"}
    assert report.reads == {"marts.z_fact"}  # the comment is not a dependency
    assert [m.name for m in in_dependency_order([report, fact, other])] == ["b_other", "z_fact", "a_report"]


def test_models_that_read_each_other_are_refused_by_name() -> None:
    a = Model("a", "marts", "select * from marts.b")
    b = Model("b", "marts", "select * from marts.a")
    with pytest.raises(ValueError, match=r"marts\.a, marts\.b"):
        in_dependency_order([a, b])


def test_the_marts_order_puts_each_fact_before_the_reports_that_read_it() -> None:
    order = [m.name for m in in_dependency_order(mart_models())]
    # read off the SQL by hand: the reports read these facts
    for fact, report in [
        ("fct_price_interval", "rpt_coverage"),
        ("fct_price_interval", "rpt_vendor_divergence"),
        ("fct_price_interval", "rpt_mark_last_gap"),
        ("fct_carry", "rpt_term_structure"),
    ]:
        assert order.index(fact) < order.index(report)
