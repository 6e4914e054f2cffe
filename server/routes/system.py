"""`/`, `/api/version` and `/api/ps`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from engine.memory import Estimate
from modelstore import gojson
from server.api import ProcessResponse, ReadyResponse, StatusResponse, VersionResponse
from server.http import json_response
from server.lifecycle import READY_PATH, Phase
from server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from server.openapi import documented
from server.state import get_state
from server.version import VERSION

router = APIRouter()


@router.api_route("/", methods=["GET", "HEAD"])
@documented("Liveness: `Ollama is running`", text=True)
async def root() -> Response:
    return Response(b"Ollama is running", media_type="text/plain; charset=utf-8")


@router.api_route("/api/version", methods=["GET", "HEAD"])
@documented("The server's version", response=VersionResponse)
async def version() -> Response:
    return json_response({"version": VERSION})


def _devices(plan: Estimate) -> list[dict]:
    """Where the layers went, for a model on RPC workers (a pollama addition; other entries keep Ollama's shape):
    the devices that got some, then what stayed on the CPU."""
    devices = [{"name": p.gpu.name, "layers": p.layers, "size": p.size} for p in plan.placements]
    on_cpu = plan.layers + 1 - plan.gpu_layers
    if on_cpu > 0:
        devices.append({"name": "CPU", "layers": on_cpu, "size": plan.total - plan.vram})
    return devices


@router.api_route(READY_PATH, methods=["GET", "HEAD"])
@documented("Readiness, for load balancers: 503 while models preload at start and while draining",
            response=ReadyResponse)
async def ready(request: Request) -> Response:
    """Readiness, for load balancers: 503 while models preload at start and while draining."""
    phase = get_state(request).lifecycle.phase
    if phase is Phase.READY:
        return json_response({"status": "ready"})
    message = "server is starting" if phase is Phase.STARTING else "server is shutting down"
    return json_response({"error": message}, 503)


@router.get("/metrics")
@documented("Prometheus metrics, in the text exposition format (see the README for each metric)", text=True)
async def metrics(request: Request) -> Response:
    return Response(get_state(request).metrics.exposition(), media_type=METRICS_CONTENT_TYPE)


@router.get("/api/status")
@documented("Server status; pollama has no cloud, so `cloud.disabled` is always true", response=StatusResponse)
async def status(request: Request) -> Response:
    # Ollama's sources: "env" (OLLAMA_NO_CLOUD), "config" (its server config), "both". pollama's own
    # configuration has no cloud at all, so it is always at least "config".
    source = "both" if get_state(request).settings.no_cloud else "config"
    return json_response({"cloud": {"disabled": True, "source": source}})


# Ollama routes GET only; POST answers the same (some descriptions of the API list it).
@router.api_route("/api/ps", methods=["GET", "POST"])
@documented("Loaded models", response=ProcessResponse)
async def ps(request: Request) -> Response:
    models = []
    for loaded in get_state(request).scheduler.loaded():
        models.append({
            "name": loaded.spec.name,
            "model": loaded.spec.name,
            "size": loaded.memory.total,
            "digest": loaded.spec.digest,
            "details": {**loaded.spec.details, "parent_model": ""},
            "expires_at": gojson.format_time(gojson.local_time_from_timestamp(loaded.expiry())),
            "size_vram": loaded.memory.local_vram,
            "context_length": loaded.num_ctx,
        })
        if loaded.memory.uses_rpc:
            models[-1]["devices"] = _devices(loaded.memory)
    return json_response({"models": models})
