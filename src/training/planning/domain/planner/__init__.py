"""The training-track planner: which modules an engineer should take next, in which order, and
why. One pure algorithm, without events or storage (the ``TrainingTrack`` aggregate in
``planning.domain.tracks`` calls it).

The planner turns plain values (targets, the skill profile, the modules available to the
tenant, what is done or under way, and the time the engineer has) into a ``Plan``: an ordered
list of modules, each with a reason a person can check, the modules that would help but do
not fit, and the gaps that stay open.

The planner in reading order:

- ``model``: the inputs and outputs, plain values (targets, levels, candidate modules, the
  time budget; the ``Plan`` and a ``PlanDiff``);
- ``problem``: the inputs checked, merged and numbered for the search;
- ``search``: the heuristic that chooses the modules, and the order to take them in;
- ``explanation``: the reasons a person reads, for planned and deferred modules;
- ``plan``: ``plan_track`` and ``replan``, which put these together;
- ``diff``: ``diff_plans``, what changed between two plans and why modules left.
"""

from __future__ import annotations

from training.planning.domain.planner.diff import diff_plans
from training.planning.domain.planner.model import (
    CandidateModule,
    Constraints,
    CurrentLevel,
    DeferredModule,
    GapClosure,
    ModuleRef,
    Plan,
    PlanDiff,
    PlannedModule,
    SkillGap,
    TargetLevel,
)
from training.planning.domain.planner.plan import plan_track, replan
from training.planning.domain.planner.problem import Offered

__all__ = [
    "CandidateModule",
    "Constraints",
    "CurrentLevel",
    "DeferredModule",
    "GapClosure",
    "ModuleRef",
    "Offered",
    "Plan",
    "PlanDiff",
    "PlannedModule",
    "SkillGap",
    "TargetLevel",
    "diff_plans",
    "plan_track",
    "replan",
]
