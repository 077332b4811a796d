"""Assessment use cases, by aggregate: attempts, private items and calibration, evidence."""

from __future__ import annotations

from training.assessments.handlers import attempts, calibration, evidence, items
from training.core.bus import Handler

HANDLERS: dict[type, Handler] = {
    **attempts.HANDLERS,
    **items.HANDLERS,
    **calibration.HANDLERS,
    **evidence.HANDLERS,
}
