"""What every handler reaches through `request.app.state.pollama`."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from engine.scheduler import Scheduler
from modelstore.store import ModelStore
from server.envconfig import Settings
from server.lifecycle import Lifecycle
from server.metrics import Metrics


@dataclass
class ServerState:
    settings: Settings
    store: ModelStore
    scheduler: Scheduler
    metrics: Metrics
    lifecycle: Lifecycle = field(default_factory=Lifecycle)


def get_state(request: Request) -> ServerState:
    return request.app.state.pollama
