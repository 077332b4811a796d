"""The cohorts' read model: the projection that writes it (``projection``) and the queries over
its cohorts, people and progress (``cohorts``) and live sessions (``sessions``)."""
