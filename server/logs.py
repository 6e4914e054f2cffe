"""Logging: Ollama's levels (OLLAMA_DEBUG: 1 debug, 2 trace), text or JSON lines (POLLAMA_LOG_FORMAT), and
the request log, one line per request from server.observe's record (never a prompt: prompts are logged only
at trace, where the engine sends them)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from server.envconfig import TRACE
from server.observe import RequestRecord

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
request_log = logging.getLogger("pollama.requests")


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, msg, and a request line's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created))
                    + f".{int(record.msecs):03d}" + time.strftime("%z", time.localtime(record.created)),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: int, log_format: str) -> None:
    logging.addLevelName(TRACE, "TRACE")
    handler = logging.StreamHandler()
    handler.setFormatter(JSONFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def request_fields(record: RequestRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {"method": record.method, "path": record.path, "status": record.status,
                              "duration_ms": round(record.duration * 1000, 3), "client": record.client}
    if record.model:
        fields["model"] = record.model
    if record.prompt_tokens is not None:
        fields["prompt_tokens"] = record.prompt_tokens
    if record.generated_tokens is not None:
        fields["generated_tokens"] = record.generated_tokens
    return fields


def log_request(record: RequestRecord) -> None:
    """server.observe's observer: the request line, logfmt-style in text, as fields in JSON."""
    if not request_log.isEnabledFor(logging.INFO):
        return
    fields = request_fields(record)
    text = " ".join(f"{key}={value}" for key, value in fields.items() if key not in ("method", "path", "status"))
    request_log.info("%s %s %d %s", record.method, record.path, record.status, text, extra={"fields": fields})
