"""The one event-sourced application that holds every context's aggregates."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Mapper

from training.application.mapper import MsgspecMapper, PassThroughTranscoder


class TrainingApplication(Application[UUID]):
    # Table names derive from the name: training_events.
    name = "training"

    def construct_mapper(self) -> Mapper[UUID]:
        return MsgspecMapper(
            transcoder=PassThroughTranscoder(),
            cipher=self.factory.cipher(),
            compressor=self.factory.compressor(),
        )
