"""A failed or warned expectation says what broke it: the rule and the values, not only a count
(GX really validates here, on a small frame)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from engine.checks.expectations import Suite, Validator


def test_a_warning_names_the_value_and_the_threshold() -> None:
    suite = Suite(
        "staging.reconciliation",
        Path("expectations/staging.reconciliation.json"),
        {
            "name": "staging.reconciliation",
            "expectations": [
                {
                    "type": "expect_column_values_to_be_between",
                    "kwargs": {"column": "rejected_share", "max_value": 0.05},
                    "severity": "warning",
                },
                {
                    "type": "expect_column_values_to_be_in_set",
                    "kwargs": {"column": "gender", "value_set": ["Male", "Female"]},
                },
            ],
        },
    )
    frame = pd.DataFrame({"rejected_share": [0.123], "gender": ["Robot"]})
    share, gender = Validator().validate(suite, frame, {})
    assert not share.success and not share.blocking_failure
    assert share.describe() == (
        "staging.reconciliation rejected_share: expect_column_values_to_be_between "
        "(at most 0.05) — 1 unexpected (100.00%): [0.123]"
    )
    assert gender.blocking_failure
    assert gender.describe().endswith(
        "expect_column_values_to_be_in_set (one of Male, Female) — 1 unexpected (100.00%): "
        '["Robot"]'
    )
