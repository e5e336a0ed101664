"""The ``[drift]`` section: how each refresh is compared with the last published one.

Every modelling feature and every categorical attribute is a drift check. A check's population
stability index (PSI) is measured on the previous refresh's quantile bins; at ``watch`` it is
worth a look, at ``alert`` its action applies: ``warn`` (the run passes with a warning) or
``block`` (the run fails like a blocking expectation and publishes nothing). The model
(python_models/drift.py) reads these settings from the seeds ``config.drift_settings`` and
``config.drift_checks``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.errors import ConfigError

ACTIONS = ("warn", "block")


@dataclass(frozen=True)
class DriftSettings:
    # PSI bins: the previous refresh's quantiles (deciles by default; ties merge bins).
    bins: int = 10
    # A bin's share is floored at this, so an empty bin gives a large PSI, not an infinite one.
    min_share: float = 0.0001
    watch: float = 0.1  # the conventional thresholds
    alert: float = 0.25
    action: str = "warn"  # what an alert does, for every check not in actions
    actions: dict[str, str] = field(default_factory=dict)  # per feature or attribute
    # What is checked: the modelling features, and the categorical attributes of a profile.
    features: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()

    def action_for(self, subject: str) -> str:
        return self.actions.get(subject, self.action)


SCHEMA = {
    "bins": {"type": "integer", "min": 2, "max": 100},
    "min_share": {"type": "number", "above": 0, "below": 0.5},
    "watch": {"type": "number", "above": 0},
    "alert": {"type": "number", "above": 0},
    "action": {"type": "string", "choices": list(ACTIONS)},
    "actions": {"type": "table", "values": {"type": "string", "choices": list(ACTIONS)},
                "keys": "a feature or categorical attribute"},
}  # fmt: skip


def drift_settings(
    section: dict[str, Any], checked: tuple[tuple[str, ...], tuple[str, ...]], where: str
) -> DriftSettings:
    """The section, its per-check actions naming only features and categorical attributes
    (``checked``)."""
    defaults = DriftSettings()
    actions = dict(section.get("actions", {}))
    unknown = [subject for subject in actions if subject not in (*checked[0], *checked[1])]
    if unknown:
        raise ConfigError(
            f"{where}: key 'drift.actions.{unknown[0]}' names no feature or categorical "
            f"attribute; drift checks {[*checked[0], *checked[1]]}"
        )
    settings = DriftSettings(
        bins=section.get("bins", defaults.bins),
        min_share=float(section.get("min_share", defaults.min_share)),
        watch=float(section.get("watch", defaults.watch)),
        alert=float(section.get("alert", defaults.alert)),
        action=section.get("action", defaults.action),
        actions=actions,
        features=checked[0],
        attributes=checked[1],
    )
    if settings.alert <= settings.watch:
        raise ConfigError(
            f"{where}: key 'drift.alert' = {settings.alert:g} must be above 'drift.watch' "
            f"= {settings.watch:g}"
        )
    return settings
