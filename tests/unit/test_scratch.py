"""drop_scratch_deployment refuses to touch a region's real topics (its dropping is exercised by every real-engine
test deployment's teardown, tests/integration/test_aggregator_harness.py)."""

from __future__ import annotations

import pytest

from gnomon.scratch import drop_scratch_deployment
from gnomon.settings import CommonSettings


def test_an_empty_topic_suffix_is_refused() -> None:
    common = CommonSettings.from_env({"GNOMON_ENGINES": "real"})
    with pytest.raises(ValueError, match="refusing the real topics"):
        drop_scratch_deployment(common, "")
