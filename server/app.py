"""The FastAPI application: routes, middleware, error envelope and lifetime of the shared state."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import PlainTextResponse, Response

from engine.layouts.runnable import preparer
from engine.scheduler import Scheduler
from modelstore.model import BrokenModel
from modelstore.store import ModelStore
from server.api import RequestError
from server.auth import KeyMiddleware
from server.disconnect import DisconnectMiddleware
from server.envconfig import Settings, load_settings
from server.errors import UnexpectedErrorMiddleware, family_error_response, unexpected_error_response
from server.http import APIError
from server.inference import load_pinned
from server.lifecycle import DrainMiddleware, preload
from server.logs import log_request
from server.metrics import Metrics
from server.middleware import GuardMiddleware
from server.observe import ObserveMiddleware
from server.routes import anthropic as anthropic_routes
from server.routes import docs, inference, models, oci, registry, system
from server.routes import openai as openai_routes
from server.state import ServerState

CPU_DEFAULT_NUM_CTX = 4096
ROUTERS = (system.router, models.router, inference.router, registry.router, openai_routes.router,
           anthropic_routes.router, docs.router)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_state(settings: Settings) -> ServerState:
    store = ModelStore(settings.models)
    scheduler = Scheduler(
        num_parallel=settings.num_parallel,
        max_loaded=settings.max_loaded_models,
        max_queue=settings.max_queue,
        default_keep_alive=settings.keep_alive,
        default_num_ctx=settings.context_length or CPU_DEFAULT_NUM_CTX,
        load_timeout=settings.load_timeout,
        flash_attention=settings.flash_attention,
        kv_cache_type=settings.kv_cache_type,
        gpu_overhead=settings.gpu_overhead,
        prepare=preparer(store.derived),
        rpc_servers=settings.rpc_servers,
    )
    return ServerState(settings=settings, store=store, scheduler=scheduler, metrics=Metrics(scheduler))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    state = build_state(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.store.remove_abandoned_temporaries()  # garbage by any rule: no live process writes them
        if not settings.noprune:
            state.store.prune()
        load = functools.partial(load_pinned, state.store, state.scheduler)
        preloading = asyncio.create_task(preload(state.lifecycle, load, settings.preload))
        yield
        preloading.cancel()
        await state.scheduler.shutdown()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
    app.state.pollama = state
    app.state.routers = [*ROUTERS, oci.router] if settings.serve_registry else list(ROUTERS)
    for router in app.state.routers:
        app.include_router(router)
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(DisconnectMiddleware)
    app.add_middleware(DrainMiddleware, lifecycle=state.lifecycle)
    if settings.api_keys:
        app.add_middleware(KeyMiddleware, keys=settings.api_keys)
    # Added last, so outermost: CORS and the Host check come before the key.
    app.add_middleware(GuardMiddleware, origins=settings.origins, loopback_only=_is_loopback(settings.host.host))
    # Outermost: every request is observed, the refused ones included.
    app.add_middleware(ObserveMiddleware, observers=[state.metrics.request_done, log_request],
                       routes=[route for router in app.state.routers for route in router.routes])

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> Response:
        return family_error_response(request.url.path, exc.message, exc.status)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> Response:
        return family_error_response(request.url.path, str(exc), 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # gin's plain-text answers for unknown paths and methods.
        if exc.status_code == 405:
            return PlainTextResponse("405 method not allowed", 405, headers=exc.headers)
        if exc.status_code == 404:
            return PlainTextResponse("404 page not found", 404)
        return family_error_response(request.url.path, str(exc.detail), exc.status_code)

    @app.exception_handler(ClientDisconnect)
    async def client_left(request: Request, exc: ClientDisconnect) -> Response:
        return Response(status_code=499)  # nginx's "client closed request": nobody reads it

    @app.exception_handler(BrokenModel)
    async def broken_model(request: Request, exc: BrokenModel) -> Response:
        return family_error_response(request.url.path, str(exc), 500)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        """What a middleware outside UnexpectedErrorMiddleware did not expect: JSON too, never plain text."""
        return unexpected_error_response(request.url.path, exc)

    return app
