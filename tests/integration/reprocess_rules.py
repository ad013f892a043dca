"""A rule-set plugin for the reprocessing tests (loaded through GNOMON_DERIVATION_PLUGINS in the processes under
test, never in the test process itself): version 1 is deliberately WRONG — tablets are counted as desktops — and
version 2 is the shipped, correct derivation. So the aggregator writes wrong numbers as v1, and a reprocess to v2
must produce what the independent ground truth (which uses the shipped rules) says."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from aggregator.derive import Column, DeriveOptions, DeriveStep, RuleSet, Step, register_rule_set, rule_set
from aggregator.derive._vector import StepStats

SHIPPED = rule_set(1)


class TabletsAsDesktops:
    """The user-agent step with the bug: "tablet" becomes "desktop"."""

    def __init__(self, inner: Step) -> None:
        self.inner = inner
        self.stats: StepStats = inner.stats

    def run(self, frame: pd.DataFrame) -> Mapping[str, Column]:
        out = dict(self.inner.run(frame))
        device = out["device_category"]
        assert isinstance(device, pd.Categorical)
        values = pd.Series(device).astype(str).replace("tablet", "desktop")
        out["device_category"] = pd.Categorical(values.astype(object))
        return out


def _buggy_user_agent(options: DeriveOptions) -> Step:
    factory = dict(SHIPPED.steps)[DeriveStep.USER_AGENT]
    return TabletsAsDesktops(factory(options))


register_rule_set(
    RuleSet(
        version=1,
        steps=tuple((step, _buggy_user_agent if step is DeriveStep.USER_AGENT else f) for step, f in SHIPPED.steps),
        description="TEST ONLY: v1 with tablets counted as desktops",
    ),
    replace=True,
)
register_rule_set(RuleSet(version=2, steps=SHIPPED.steps, description="the shipped rules (fixes v1's tablets)"))
