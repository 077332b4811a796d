"""Curricula over HTTP: draft, publish, compare, retire and fork; search published modules.

The same endpoints serve the operator, who keeps the platform catalogue, and the tenants,
who keep private curricula and read (and fork) the catalogue. Reads by the operator see the
catalogue only.
"""

from __future__ import annotations

from training.curricula.http.curricula import CurriculumController
from training.curricula.http.modules import ModuleController

ROUTES = [CurriculumController, ModuleController]
