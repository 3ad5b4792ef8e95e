"""MetricsMeter: time the user spends on an approval question is not the model's (a fake clock, a table)."""

from __future__ import annotations

import pytest

from LLM.core.chat.metrics import MetricsMeter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run(script: str) -> tuple[float | None, float | None, float | None]:
    """Play ``script`` on a meter: ``+S`` the clock moves S seconds, ``d`` a token arrives, ``(`` / ``)``
    a pause opens / closes; (time to first token ms, duration ms, tokens per second) at the end."""
    clock = FakeClock()
    meter = MetricsMeter(clock)
    pauses = []
    for step in script.split():
        if step.startswith("+"):
            clock.now += float(step[1:])
        elif step == "d":
            meter.delta()
        elif step == "(":
            pauses.append(meter.paused())
            pauses[-1].__enter__()
        elif step == ")":
            pauses.pop().__exit__(None, None, None)
    metrics = meter.snapshot("stop")
    return metrics.time_to_first_token_ms, metrics.duration_ms, metrics.tokens_per_second


@pytest.mark.parametrize("script, ttft_ms, duration_ms, rate", [
    pytest.param("+0.5 d +1 d", 500, 1500, 1.0, id="no-pause"),
    pytest.param("+0.5 ( +10 ) d +1 d", 500, 1500, 1.0, id="approval-before-first-token"),
    pytest.param("+0.5 d ( +10 ) +1 d", 500, 1500, 1.0, id="approval-between-tokens"),
    pytest.param("+0.5 d +1 d ( +10 )", 500, 1500, 1.0, id="approval-after-last-token"),
    pytest.param("+0.5 ( +4 ( +3 ) +3 ) d", 500, 500, None, id="nested-pauses-count-once"),
    pytest.param("+0.5 ( +2 ) +0.5 ( +2 ) d", 1000, 1000, None, id="two-approvals"),
    pytest.param("+0.5 ( +10", None, 500, None, id="snapshot-while-paused"),
])
def test_metrics_meter_leaves_paused_time_out(script, ttft_ms, duration_ms, rate):
    ttft, duration, speed = run(script)
    assert ttft == (None if ttft_ms is None else pytest.approx(ttft_ms))
    assert duration == pytest.approx(duration_ms)
    assert speed == (None if rate is None else pytest.approx(rate))
