"""Personal training tracks: what each engineer should learn next, in which order, and why.

Three names recur here and mean three things:

- a *track* (``domain/tracks.py``: the ``TrainingTrack`` aggregate, one per engineer) holds
  the inputs of an engineer's plan and every plan made for them; a ``PlanningCatalogue`` per
  tenant holds what there is to plan with (curricula, role profiles, cohorts);
- the *planner* (``domain/planner/``) is the pure algorithm a track calls to turn its inputs
  into a ``Plan``: no events, no storage;
- *planning* (``process.py``: the ``Planning`` process application) follows the training
  application's events (reviews, assessments, curricula, cohorts, members) and re-plans the
  tracks they affect; it writes its own events, apart from the training application's.

Beside them: ``domain/learning.py`` and ``handlers/learning.py`` are the engineer's own
progress reports (a command of the training application, which the process then follows);
``views/tracks.py`` is the tracks read model, built from the process's events, and
``views/learning.py`` the notes kept with progress reports; ``http.py`` serves tracks and
progress reports.
"""
