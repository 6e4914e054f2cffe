"""Every setting pollama reads, from Ollama's environment variables (envconfig/config.go)."""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

DEFAULT_PORT = 11434
FOREVER = math.inf
# Bodies of JSON requests (not blob uploads, which stream to disk). Images travel base64-encoded in chat
# requests, so the default leaves room for many; it bounds what one request can make the daemon hold.
DEFAULT_MAX_BODY = 64 << 20
# How long a client may take over a request's headers, or stall in its body, before it is disconnected.
DEFAULT_READ_TIMEOUT = 60.0


def _var(name: str) -> str:
    return os.environ.get(name, "").strip().strip("\"'")


def _bool(name: str, default: bool = False) -> bool:
    raw = _var(name)
    if not raw:
        return default
    lowered = raw.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    return True  # Ollama: any other non-empty value counts as true


def _list(name: str) -> tuple[str, ...]:
    """A comma-separated variable."""
    return tuple(item.strip() for item in _var(name).split(",") if item.strip())


def _uint(name: str, default: int) -> int:
    raw = _var(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        log.warning("invalid environment variable, using default: %s=%s default=%d", name, raw, default)
        return default
    return value


# time.Duration is int64 nanoseconds.
MAX_DURATION_SECONDS = (2**63 - 1) / 1e9
_GO_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class DurationError(ValueError):
    pass


def parse_go_duration(text: str) -> float:
    """Go's time.ParseDuration, in seconds. Raises DurationError with Go's message."""
    original = text
    if text in ("0", "+0", "-0"):
        return 0.0
    sign = 1.0
    if text[:1] in ("+", "-"):
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if not text:
        raise DurationError(f'time: invalid duration "{original}"')
    total, pos = 0.0, 0
    while pos < len(text):
        match = _GO_DURATION.match(text, pos)
        if not match:
            if re.fullmatch(r"[0-9]*\.?[0-9]+", text[pos:]):
                raise DurationError(f'time: missing unit in duration "{original}"')
            raise DurationError(f'time: invalid duration "{original}"')
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if total > MAX_DURATION_SECONDS:
        raise DurationError(f'time: invalid duration "{original}"')
    return sign * total


def _seconds_env(raw: str, default: float) -> float:
    """A duration variable: a Go duration or bare integer seconds; the default when unset or invalid."""
    if not raw:
        return default
    try:
        return float(int(raw))
    except ValueError:
        pass
    try:
        return parse_go_duration(raw)
    except DurationError:
        return default


def _keep_alive_env(raw: str) -> float:
    """OLLAMA_KEEP_ALIVE: negative means forever."""
    seconds = _seconds_env(raw, 300.0)
    return FOREVER if seconds < 0 else seconds


def _load_timeout(raw: str) -> float | None:
    """OLLAMA_LOAD_TIMEOUT: zero or negative means no limit."""
    seconds = _seconds_env(raw, 300.0)
    return None if seconds <= 0 else seconds


def _read_timeout(raw: str) -> float | None:
    """POLLAMA_READ_TIMEOUT: zero or negative means no limit (as Ollama)."""
    seconds = _seconds_env(raw, DEFAULT_READ_TIMEOUT)
    return None if seconds <= 0 else seconds


@dataclass(frozen=True)
class Host:
    scheme: str
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_host(raw: str) -> Host:
    """OLLAMA_HOST: `[scheme://]host[:port][/path]`, defaulting to 127.0.0.1:11434."""
    if not raw:
        return Host("http", "127.0.0.1", DEFAULT_PORT)
    scheme, default_port = "http", DEFAULT_PORT
    if "://" in raw:
        scheme, raw = raw.split("://", 1)
        default_port = {"http": 80, "https": 443}.get(scheme, DEFAULT_PORT)
    raw = raw.split("/", 1)[0]
    if raw == "::1":
        return Host(scheme, "::1", default_port)
    parts = urlsplit(f"//{raw}")
    host = parts.hostname or ""
    try:
        port = parts.port or default_port
    except ValueError:
        port = DEFAULT_PORT
    if host == "" and raw.startswith(":"):
        host = "0.0.0.0"
    return Host(scheme, host or "127.0.0.1", port)


TRACE = 5  # Ollama's trace level (slog -8), below logging.DEBUG
LOG_FORMATS = ("text", "json")


def _log_level(raw: str) -> int:
    """OLLAMA_DEBUG as Ollama reads it: a boolean (true: debug), else an integer n for slog's level -4n, so 2
    is trace and -1 warnings; as a `logging` level."""
    lowered = raw.lower()
    if lowered in ("1", "t", "true"):
        return logging.DEBUG
    try:
        slog_level = -4 * int(raw)
    except ValueError:
        return logging.INFO
    if slog_level <= -8:
        return TRACE
    return max(TRACE, logging.INFO + slog_level * 5 // 2)


def _log_format(raw: str) -> str:
    lowered = raw.lower()
    if lowered and lowered not in LOG_FORMATS:
        log.warning("invalid environment variable, using default: POLLAMA_LOG_FORMAT=%s default=text", raw)
        return "text"
    return lowered or "text"


class SettingsError(ValueError):
    """A setting that cannot be honoured; the server refuses to start rather than run without it."""


def _api_keys(raw: str) -> tuple[str, ...]:
    """POLLAMA_API_KEYS: `key1,key2`, or `@/path` to a file with one key per line (blank lines and `#`
    comments skipped). A file that cannot be read stops the server: running open would be worse."""
    if raw.startswith("@"):
        path = Path(raw[1:]).expanduser()
        try:
            lines = path.read_text().splitlines()
        except OSError as e:
            raise SettingsError(f"POLLAMA_API_KEYS: cannot read {path}: {e.strerror}") from None
        keys = tuple(k for k in (line.strip() for line in lines) if k and not k.startswith("#"))
        if not keys:
            raise SettingsError(f"POLLAMA_API_KEYS: no keys in {path}")
        return keys
    return tuple(k for k in (part.strip() for part in raw.split(",")) if k)


@dataclass(frozen=True)
class Settings:
    host: Host
    models: Path
    keep_alive: float
    num_parallel: int  # 0: chosen per model (up to 4 sequences sharing one window's KV cells)
    max_loaded_models: int
    max_queue: int
    origins: tuple[str, ...]
    context_length: int
    load_timeout: float | None
    noprune: bool
    gpu_overhead: int
    kv_cache_type: str
    flash_attention: bool | None
    debug: bool
    serve_registry: bool = False
    # Never in a repr, so never in a log line that prints the settings.
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    shutdown_timeout: float = 30.0
    preload: tuple[str, ...] = ()
    rpc_servers: tuple[str, ...] = ()
    log_level: int = logging.INFO
    log_format: str = "text"
    no_cloud: bool = False
    max_body: int = DEFAULT_MAX_BODY
    read_timeout: float | None = DEFAULT_READ_TIMEOUT


def load_settings() -> Settings:
    models = _var("OLLAMA_MODELS")
    origins = tuple(o.strip().lower() for o in _var("OLLAMA_ORIGINS").split(",") if o.strip())
    flash = _var("OLLAMA_FLASH_ATTENTION")
    return Settings(
        host=parse_host(_var("OLLAMA_HOST")),
        models=Path(models).expanduser() if models else Path.home() / ".ollama" / "models",
        keep_alive=_keep_alive_env(_var("OLLAMA_KEEP_ALIVE")),
        num_parallel=_uint("OLLAMA_NUM_PARALLEL", 0),
        max_loaded_models=_uint("OLLAMA_MAX_LOADED_MODELS", 0) or 3,
        max_queue=_uint("OLLAMA_MAX_QUEUE", 512),
        origins=origins,
        context_length=_uint("OLLAMA_CONTEXT_LENGTH", 0),
        load_timeout=_load_timeout(_var("OLLAMA_LOAD_TIMEOUT")),
        noprune=_bool("OLLAMA_NOPRUNE"),
        gpu_overhead=_uint("OLLAMA_GPU_OVERHEAD", 0),
        kv_cache_type=_var("OLLAMA_KV_CACHE_TYPE"),
        flash_attention=_bool("OLLAMA_FLASH_ATTENTION") if flash else None,
        debug=_log_level(_var("OLLAMA_DEBUG")) <= logging.DEBUG,
        log_level=_log_level(_var("OLLAMA_DEBUG")),
        log_format=_log_format(_var("POLLAMA_LOG_FORMAT")),
        no_cloud=_bool("OLLAMA_NO_CLOUD"),
        serve_registry=_bool("POLLAMA_SERVE_REGISTRY"),
        api_keys=_api_keys(_var("POLLAMA_API_KEYS")),
        shutdown_timeout=_seconds_env(_var("POLLAMA_SHUTDOWN_TIMEOUT"), 30.0),
        preload=_list("POLLAMA_PRELOAD"),
        rpc_servers=_list("POLLAMA_RPC_SERVERS"),
        max_body=_uint("POLLAMA_MAX_BODY", 0) or DEFAULT_MAX_BODY,
        read_timeout=_read_timeout(_var("POLLAMA_READ_TIMEOUT")),
    )


# --- read by the CLI (the client side) ---------------------------------------------------------------


def client_api_key() -> str:
    """OLLAMA_API_KEY: sent by the CLI as `Authorization: Bearer <key>` when set."""
    return os.environ.get("OLLAMA_API_KEY", "")


def no_history() -> bool:
    """OLLAMA_NOHISTORY: `pollama run` keeps no line history."""
    return _bool("OLLAMA_NOHISTORY")


def editor() -> str:
    """OLLAMA_EDITOR, else VISUAL, else EDITOR: the editor Ctrl+G opens in `pollama run`."""
    return os.environ.get("OLLAMA_EDITOR") or os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
