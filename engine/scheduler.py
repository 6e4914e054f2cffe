"""Which models are loaded: loading, keep-alive, reloads and eviction (Ollama's server/sched.go).

One runner process per model blob. Requests for a loaded model with matching load-time options
attach to it at once; everything else waits in a bounded queue, and loads happen one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from engine import rpc
from engine.client import RunnerError, RunnerProcess
from engine.gpu import nvidia_gpus
from engine.memory import GPU, Estimate, draft_bytes, effective_kv_cache_type, estimate, system_memory
from engine.options import Options
from engine.protocol import LoadSpec
from modelstore.gguf import read_gguf

FOREVER = math.inf
# Ollama shows a model kept forever as expiring in about 292 years (max int64 nanoseconds).
FOREVER_SECONDS = (2**63 - 1) / 1e9
MIN_NUM_CTX = 4
# With OLLAMA_NUM_PARALLEL unset: the sequences per model (Ollama chose 4, or 1 when 4 did not fit, before
# v0.6.7). They share one window's KV cells, so 4 fit wherever 1 does (see engine/runner/loop.py).
AUTO_PARALLEL = 4
VISION_MIN_NUM_CTX = 2048


class QueueFull(Exception):
    def __init__(self) -> None:
        super().__init__("server busy, please try again.  maximum pending requests exceeded")


class WaitQueue:
    """Requests waiting, for a load or for a free slot of a loaded model: OLLAMA_MAX_QUEUE bounds them
    together. (Ollama counts only those waiting for a load, so a busy loaded model makes clients wait
    without bound; a quick 503 lets them go elsewhere or come back.)"""

    def __init__(self, limit: int, counters: SchedulerCounters) -> None:
        self.limit = limit
        self.count = 0
        self.counters = counters

    @contextlib.contextmanager
    def entry(self) -> Iterator[None]:
        if self.count >= self.limit:
            self.counters.queue_rejections += 1
            raise QueueFull()
        self.count += 1
        try:
            yield
        finally:
            self.count -= 1


def human_bytes(n: float) -> str:
    """Ollama's HumanBytes2: binary units with one decimal."""
    if n < 1024:
        return f"{int(n)} B"
    units = ["KiB", "MiB", "GiB", "TiB"]
    n /= 1024
    while n >= 1024 and len(units) > 1:
        n /= 1024
        units.pop(0)
    return f"{n:.1f} {units[0]}"


class DoesNotFit(RunnerError):
    def __init__(self, needed: int, available: int) -> None:
        super().__init__(f"model requires more system memory ({human_bytes(needed)}) than is available "
                         f"({human_bytes(available)})", 500)


def _sane_keep_alive(keep_alive: float | None) -> float | None:
    """NaN (which no comparison catches) means the default; beyond a Go duration, forever."""
    if keep_alive is None or math.isnan(keep_alive):
        return None
    return FOREVER if keep_alive < 0 or keep_alive >= FOREVER_SECONDS else keep_alive


@dataclass(frozen=True)
class ModelSpec:
    """What the scheduler needs to know about a model; the caller resolves it from the store."""

    key: str  # the model blob path: two names for one blob share a runner
    model_path: str
    name: str  # short display name, for /api/ps
    digest: str
    details: dict = field(compare=False, hash=False, default_factory=dict)
    adapters: tuple[str, ...] = ()
    projectors: tuple[str, ...] = ()
    train_ctx: int = 0
    embedding: bool = False  # load for embeddings (one sequence, pooled outputs) instead of generation
    vision: bool = False
    draft: str = ""  # a draft model for speculative decoding (the manifest's draft layer)


@dataclass
class SchedulerCounters:
    """Running totals the server exports as metrics (the engine itself knows nothing of them). Keyed by
    the model's display name."""

    runner_starts: Counter[str] = field(default_factory=Counter)
    # Runners that exited unasked: while loading (the load failed) or after.
    runner_crashes: Counter[str] = field(default_factory=Counter)
    queue_rejections: int = 0


@dataclass
class LoadedModel:
    spec: ModelSpec
    runner: RunnerProcess
    load_key: tuple
    num_ctx: int
    session: float  # keep-alive in seconds, FOREVER for never
    slots: asyncio.Semaphore
    memory: Estimate
    waiting: WaitQueue
    expires_at: float | None = None  # None until the model first goes idle
    ref_count: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    timer: asyncio.TimerHandle | None = None

    def expiry(self) -> float:
        if self.expires_at is not None:
            return self.expires_at
        return time.time() + min(self.session, FOREVER_SECONDS)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """One of the runner's parallel sequences; extra requests wait here, within the queue's bound."""
        if self.slots.locked():
            with self.waiting.entry():
                await self.slots.acquire()
        else:
            await self.slots.acquire()
        try:
            yield
        finally:
            self.slots.release()


class Scheduler:
    def __init__(
        self,
        *,
        num_parallel: int,
        max_loaded: int,
        max_queue: int,
        default_keep_alive: float,
        default_num_ctx: int,
        load_timeout: float | None,
        flash_attention: bool | None = None,
        kv_cache_type: str = "",
        gpu_overhead: int = 0,
        prepare: Callable[[ModelSpec], Awaitable[ModelSpec]] | None = None,
        rpc_servers: tuple[str, ...] = (),
    ) -> None:
        self.num_parallel = num_parallel
        self.max_loaded = max_loaded
        self.max_queue = max_queue
        self.default_keep_alive = default_keep_alive
        self.default_num_ctx = default_num_ctx
        self.load_timeout = load_timeout
        self.flash_attention = flash_attention
        self.kv_cache_type = effective_kv_cache_type(kv_cache_type, flash_attention)  # for estimates and runners alike
        self.gpu_overhead = gpu_overhead
        # Before a load: the spec with the files a runner can load (engine.layouts derives them).
        self.prepare = prepare
        self.rpc_servers = rpc_servers
        self._loaded: dict[str, LoadedModel] = {}
        self._load_lock = asyncio.Lock()
        self.counters = SchedulerCounters()
        self.waiting = WaitQueue(max_queue, self.counters)

    # -- public -----------------------------------------------------------------------------------

    def resolve_num_ctx(self, spec: ModelSpec, opts: Options) -> int:
        num_ctx = self.default_num_ctx if opts.num_ctx is None else opts.num_ctx
        if spec.train_ctx:
            num_ctx = min(num_ctx, spec.train_ctx)
        num_ctx = max(num_ctx, MIN_NUM_CTX)
        if spec.vision:
            num_ctx = max(num_ctx, VISION_MIN_NUM_CTX)
        return num_ctx

    @contextlib.asynccontextmanager
    async def use(
        self, spec: ModelSpec, opts: Options, keep_alive: float | None, *, shift: bool = True
    ) -> AsyncIterator[LoadedModel]:
        """A loaded runner for `spec`, held (not unloaded, not expiring) until the block exits."""
        keep_alive = _sane_keep_alive(keep_alive)
        loaded = await self._acquire(spec, opts, keep_alive, shift)
        try:
            yield loaded
        finally:
            self._release(loaded)

    async def unload(self, key: str) -> None:
        loaded = self._loaded.get(key)
        if loaded is None:
            return
        loaded.session = 0
        loaded.expires_at = time.time()
        if loaded.ref_count == 0:
            await self._close(loaded)

    def queue_depth(self) -> int:
        """Requests waiting for a model to load or for a slot (bounded by max_queue)."""
        return self.waiting.count

    def loaded(self) -> list[LoadedModel]:
        return sorted(self._loaded.values(), key=lambda m: m.expiry(), reverse=True)

    async def shutdown(self) -> None:
        for loaded in list(self._loaded.values()):
            await self._close(loaded)

    # -- internals --------------------------------------------------------------------------------

    def _load_key(self, spec: ModelSpec, opts: Options, shift: bool) -> tuple:
        num_ctx = self.resolve_num_ctx(spec, opts)
        num_gpu = opts.num_gpu if opts.num_gpu >= 0 else -1
        drafting = opts.draft_num_predict if spec.draft else 0  # the option means nothing without a draft
        return (num_ctx, opts.num_batch, num_gpu, opts.main_gpu, opts.use_mmap, opts.num_thread,
                drafting, shift, spec.adapters, spec.projectors, spec.draft)

    def _usable(self, loaded: LoadedModel | None, load_key: tuple) -> bool:
        return loaded is not None and loaded.runner.alive and loaded.load_key == load_key

    async def _acquire(self, spec: ModelSpec, opts: Options, keep_alive: float | None, shift: bool) -> LoadedModel:
        load_key = self._load_key(spec, opts, shift)
        loaded = self._loaded.get(spec.key)
        if self._usable(loaded, load_key):
            return self._attach(loaded, spec, keep_alive)
        with self.waiting.entry():
            async with self._load_lock:
                while True:
                    loaded = self._loaded.get(spec.key)
                    if self._usable(loaded, load_key):
                        return self._attach(loaded, spec, keep_alive)
                    if loaded is not None:
                        await self._expire(loaded)
                    elif len(self._loaded) >= self.max_loaded:
                        await self._expire(self._victim())
                    elif (holder := self._rpc_holder()) is not None:
                        # A worker serves one runner at a time: the model on them goes first.
                        await self._expire(holder)
                    else:
                        runnable = await self.prepare(spec) if self.prepare is not None else spec
                        plan = await self._plan(runnable, opts, load_key)
                        needed, available = plan.total - plan.vram, system_memory()[1]
                        if needed > available and self._loaded:
                            # Idle models go first; a busy one is drained, then unloaded.
                            await self._expire(self._victim())
                            continue
                        if needed > available:
                            raise DoesNotFit(needed, available)
                        loaded = await self._load(runnable, opts, load_key, keep_alive, plan)
                        return self._attach(loaded, spec, keep_alive)

    def _sequences(self, spec: ModelSpec) -> tuple[int, bool]:
        """How many sequences a runner decodes together, and whether they share one window's KV cells."""
        if spec.embedding:
            return 1, False
        if self.num_parallel > 0:  # OLLAMA_NUM_PARALLEL: a window of KV cells for each sequence
            return self.num_parallel, False
        return AUTO_PARALLEL, True

    def _rpc_holder(self) -> LoadedModel | None:
        return next((loaded for loaded in self._loaded.values() if loaded.memory.uses_rpc), None)

    async def _devices(self) -> list[GPU]:
        """Local GPUs, then the devices of the RPC workers that answer now."""
        gpus = await asyncio.to_thread(nvidia_gpus)
        if self.rpc_servers:
            remote = await asyncio.to_thread(rpc.probe, list(self.rpc_servers))
            gpus += [GPU(len(gpus) + i, f"RPC[{d.endpoint}]" + (f"#{d.index}" if d.index else ""), d.total, d.free,
                         remote=d.endpoint) for i, d in enumerate(remote)]
        return gpus

    async def _plan(self, spec: ModelSpec, opts: Options, load_key: tuple) -> Estimate:
        info = await asyncio.to_thread(read_gguf, spec.model_path)
        gpus = await self._devices()
        parallel, shared = self._sequences(spec)
        draft = 0
        if spec.draft and opts.draft_num_predict > 0:
            draft_info = await asyncio.to_thread(read_gguf, spec.draft)
            draft = draft_bytes(draft_info, load_key[0] * (1 if shared else parallel), self.kv_cache_type)
        return estimate(info, num_ctx=load_key[0], parallel=parallel, num_batch=opts.num_batch, gpus=gpus,
                        num_gpu=opts.num_gpu, kv_cache_type=self.kv_cache_type, gpu_overhead=self.gpu_overhead,
                        draft_bytes=draft, kv_unified=shared)

    async def _load(self, spec: ModelSpec, opts: Options, load_key: tuple, keep_alive: float | None,
                    plan: Estimate) -> LoadedModel:
        num_ctx = load_key[0]
        parallel = plan.parallel
        load_spec = LoadSpec(
            model_path=spec.model_path,
            num_ctx=num_ctx,
            parallel=parallel,
            kv_unified=plan.kv_unified,
            num_batch=opts.num_batch,
            num_gpu=plan.gpu_layers,
            main_gpu=opts.main_gpu or 0,
            use_mmap=opts.use_mmap,
            num_thread=opts.num_thread,
            adapters=list(spec.adapters),
            projectors=list(spec.projectors),
            embedding=spec.embedding,
            flash_attn=self.flash_attention,
            kv_cache_type=self.kv_cache_type,
            draft_path=spec.draft,
            draft_num_predict=opts.draft_num_predict,
            rpc_servers=plan.rpc_servers,
            tensor_split=plan.tensor_split() if plan.rpc_servers else [],
        )
        self.counters.runner_starts[spec.name] += 1
        try:
            runner = await RunnerProcess.start(load_spec, load_timeout=self.load_timeout)
        except RunnerError:
            self.counters.runner_crashes[spec.name] += 1
            raise
        runner.on_crash = lambda: self.counters.runner_crashes.update([spec.name])
        session = self.default_keep_alive if keep_alive is None else keep_alive
        loaded = LoadedModel(spec=spec, runner=runner, load_key=load_key, num_ctx=num_ctx, session=session,
                             slots=asyncio.Semaphore(parallel), memory=plan, waiting=self.waiting)
        self._loaded[spec.key] = loaded
        return loaded

    def _attach(self, loaded: LoadedModel, spec: ModelSpec, keep_alive: float | None) -> LoadedModel:
        loaded.ref_count += 1
        loaded.idle.clear()
        loaded.spec = spec  # the latest name used for this blob is what /api/ps shows
        if loaded.timer is not None:
            loaded.timer.cancel()
            loaded.timer = None
        if keep_alive is not None:
            loaded.session = keep_alive
        return loaded

    def _release(self, loaded: LoadedModel) -> None:
        loaded.ref_count -= 1
        if loaded.ref_count > 0:
            return
        loaded.idle.set()
        if self._loaded.get(loaded.spec.key) is not loaded:
            return
        if not loaded.runner.alive:
            asyncio.get_running_loop().create_task(self._close(loaded))
            return
        if loaded.session <= 0:
            loaded.expires_at = time.time()
            asyncio.get_running_loop().create_task(self._close(loaded))
            return
        loaded.expires_at = time.time() + min(loaded.session, FOREVER_SECONDS)
        if loaded.session != FOREVER:
            loop = asyncio.get_running_loop()
            loaded.timer = loop.call_later(loaded.session, lambda: loop.create_task(self._close(loaded)))

    def _victim(self) -> LoadedModel:
        """Ollama's choice: shortest keep-alive first (ties by path), preferring idle models."""
        ranked = sorted(self._loaded.values(), key=lambda m: (m.session, m.spec.key))
        return next((m for m in ranked if m.ref_count == 0), ranked[0])

    async def _expire(self, loaded: LoadedModel) -> None:
        loaded.session = 0
        if loaded.ref_count > 0:
            await loaded.idle.wait()
        await self._close(loaded)

    async def _close(self, loaded: LoadedModel) -> None:
        if loaded.ref_count > 0:
            return
        if self._loaded.get(loaded.spec.key) is loaded:
            del self._loaded[loaded.spec.key]
        if loaded.timer is not None:
            loaded.timer.cancel()
            loaded.timer = None
        with contextlib.suppress(RunnerError, ProcessLookupError):
            await loaded.runner.close()
