"""What every handler reaches through `request.app.state.pollama`."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from engine.scheduler import Scheduler
from modelstore.store import ModelStore
from server.envconfig import Settings


@dataclass
class ServerState:
    settings: Settings
    store: ModelStore
    scheduler: Scheduler


def get_state(request: Request) -> ServerState:
    return request.app.state.pollama
