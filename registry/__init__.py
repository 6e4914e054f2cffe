"""OCI distribution client for pulling and pushing models, compatible with Ollama and plain registries.

Layout:

* `transport` — `RegistryClient`: one registry host with Ollama's request rules (`insecure` = plain
  HTTP, 401 → challenge → token → one retry, 404 → `file does not exist`, `<code>: <body>`), the
  auth state of one pull or push, and where a blob's bytes come from (`resolve_blob`: the registry
  itself, or a storage host it redirects to, which never gets the Authorization header).
* `auth` — `WWW-Authenticate` parsing with Ollama's quirks; Ollama's signed token requests with
  `~/.ollama/id_ed25519` (created in Ollama's OpenSSH format when missing); the standard Docker token
  flow; Basic credentials from a Docker `config.json`; `HF_TOKEN` for hf.co.
* `rangeget` — the hot path: ranged GETs on raw keep-alive sockets straight into the file (httpx when
  a proxy applies).
* `download` — one blob: Ollama's parts and `-partial`/`-partial-N` state files (resumable by either
  program), parallel ranges, SHA-256 computed as the bytes arrive, fsync + rename only when the
  digest matches, stall/retry/back-off, full-disk handling, downloads shared by concurrent pulls.
* `inorder` — a blob's SHA-256 while its streams write it out of order, from the buffers they hand over.
* `upload` — one blob: HEAD, cross-repository mount, PATCH parts with `Content-Range`, `PUT ?digest=`.
* `pull`, `push` — the progress streams of `/api/pull` and `/api/push`, status for status as Ollama's.
* `threads` — blocking work on its own threads, awaited from asyncio.

This package depends on `modelstore` only. Tuning knobs, read from the environment when used:
`POLLAMA_DOWNLOAD_STREAMS` (unset: 1 to 8 as they pay; a number fixes it), `POLLAMA_DOWNLOAD_STALL_TIMEOUT` (30 s),
`POLLAMA_REGISTRY_RETRY_DELAY` (1 s, the first back-off step). `HTTP(S)_PROXY`/`NO_PROXY` apply.
"""
