"""Assessments over HTTP: adaptive tests, skill profiles, group views, items and calibration.

An engineer takes adaptive tests with their own (member) token: one item at a time, never
its answer key. HR and managers see results (levels and standard errors), never item
responses. Group views hide every skill fewer than ``MIN_GROUP`` people have a result for.
Authors (``skills:write``) write the tenant's private items, with their keys, and run the
calibration that re-estimates item difficulties from the recorded responses and rescores
completed attempts, keeping each original result beside the new ones.
"""

from __future__ import annotations

from training.assessments.http.attempts import (
    AssessmentController,
    BatteryController,
    MyAssessmentsController,
)
from training.assessments.http.calibrations import CalibrationController
from training.assessments.http.items import ItemController
from training.assessments.http.profiles import MemberSkillsController, SkillSummaryController

ROUTES = [
    AssessmentController,
    BatteryController,
    MyAssessmentsController,
    MemberSkillsController,
    SkillSummaryController,
    ItemController,
    CalibrationController,
]
