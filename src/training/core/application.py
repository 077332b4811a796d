"""The one event-sourced application that holds every context's aggregates."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Mapper
from eventsourcing.utils import strtobool

from training.core.mapper import MsgspecMapper, PassThroughTranscoder
from training.core.repository import SharedCacheRepository


class TrainingApplication(Application[UUID]):
    # Table names derive from the name: training_events, training_snapshots.
    name = "training"
    # The snapshot store; which aggregates are snapshotted, and when, is theirs to say
    # (``snapshot_interval``, core/snapshots.py).
    is_snapshotting_enabled = True
    repository: SharedCacheRepository

    def construct_mapper(self) -> Mapper[UUID]:
        return MsgspecMapper(
            transcoder=PassThroughTranscoder(),
            cipher=self.factory.cipher(),
            compressor=self.factory.compressor(),
        )

    def construct_repository(self) -> SharedCacheRepository:
        # The library's settings, read as it reads them; only the class differs.
        maxsize = self.env.get(self.AGGREGATE_CACHE_MAXSIZE)
        return SharedCacheRepository(
            event_store=self.events,
            snapshot_store=self.snapshots,
            cache_maxsize=int(maxsize) if maxsize else None,
            fastforward=strtobool(self.env.get(self.AGGREGATE_CACHE_FASTFORWARD, "y")),
            fastforward_skipping=strtobool(
                self.env.get(self.AGGREGATE_CACHE_FASTFORWARD_SKIPPING, "n")
            ),
            deepcopy_from_cache=strtobool(self.env.get(self.DEEPCOPY_FROM_AGGREGATE_CACHE, "y")),
        )
