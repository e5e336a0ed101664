"""The benchmark's per-layer breakdown adds up to the wall time, also when models run at once
(Spark's concurrent_models): overlapping models share the time they overlap."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.run import layer_breakdown, shared_time


def test_overlapping_spans_share_their_time_and_gaps_count_for_none() -> None:
    # a alone 0-2, a and b 2-4 (1 s each), b alone 4-6, nothing 6-7, a alone 7-8.
    spans = [(0.0, 4.0, "a"), (2.0, 6.0, "b"), (7.0, 8.0, "a")]
    assert shared_time(spans) == {"a": 4.0, "b": 3.0}


def test_concurrent_models_leave_the_rest_of_the_build_to_validation_and_publish(
    tmp_path: Path,
) -> None:
    start = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

    def model(layer: str, kind: str, at: float, seconds: float) -> dict:
        began = (start + timedelta(seconds=at)).isoformat()
        return {"layer": layer, "kind": kind, "started_at": began, "seconds": seconds}

    models = [
        model("raw", "sql", 0, 10),
        model("raw", "sql", 0, 10),  # two loads at once: 10 s of wall time, not 20
        model("marts", "sql", 10, 6),
        model("ml", "python", 12, 2),  # inside the mart's 6 s: 1 s each
    ]
    result = tmp_path / "latest.json"
    result.write_text(json.dumps({"seconds": 20.0, "models": models}))
    parts = layer_breakdown(result, wall_seconds=21.0)
    assert parts == {
        "load": 10.0,
        "SQL marts": 5.0,
        "Python models": 1.0,
        "validation wait and publish": 4.0,
        "start-up": 1.0,
    }
    assert sum(parts.values()) == 21.0
