"""The `pollama` command line: Ollama's commands, flags, help and exit statuses.

Each command is one `Command` entry in `commands()`; its handler takes the HTTP client (None for commands
that need no server) and the parsed command line. A failure is printed as `Error: <text>` with status 1, as
Ollama's CLI does, and never as a traceback.
"""

from __future__ import annotations

import sys

from server.cli import create, models, rpc, run, serve, show, transfer
from server.cli.client import Client, CLIError
from server.cli.flags import Command, Flag, UsageError, command_help, parse, root_help
from server.version import VERSION

PROGRAM = "pollama"
SHORT = "Large language model runner"

_HOST_DOC = ("OLLAMA_HOST", "IP Address for the ollama server (default 127.0.0.1:11434)")
_RUN_ENV = (("OLLAMA_EDITOR", "Path to editor for interactive prompt editing (Ctrl+G)"), _HOST_DOC,
            ("OLLAMA_NOHISTORY", "Do not preserve readline history"))
_SERVE_ENV = (
    ("OLLAMA_DEBUG", "Show additional debug information (e.g. OLLAMA_DEBUG=1)"), _HOST_DOC,
    ("OLLAMA_CONTEXT_LENGTH", "Context length to use unless otherwise specified (default: 4096)"),
    ("OLLAMA_KEEP_ALIVE", 'The duration that models stay loaded in memory (default "5m")'),
    ("OLLAMA_MAX_LOADED_MODELS", "Maximum number of loaded models per GPU"),
    ("OLLAMA_MAX_QUEUE", "Maximum number of queued requests"),
    ("OLLAMA_MODELS", "The path to the models directory"),
    ("OLLAMA_NUM_PARALLEL", "Maximum number of parallel requests"),
    ("OLLAMA_NOPRUNE", "Do not prune model blobs on startup"),
    ("OLLAMA_ORIGINS", "A comma separated list of allowed origins"),
    ("OLLAMA_FLASH_ATTENTION", "Enabled flash attention"),
    ("OLLAMA_KV_CACHE_TYPE", "Quantization type for the K/V cache (default: f16)"),
    ("OLLAMA_GPU_OVERHEAD", "Reserve a portion of VRAM per GPU (bytes)"),
    ("OLLAMA_LOAD_TIMEOUT", 'How long to allow model loads to stall before giving up (default "5m")'),
)

ROOT_FLAGS = [
    Flag("version", "Show version information", short="v"),
    Flag("verbose", "Show timings for response"),
    Flag("nowordwrap", "Don't wrap words to the next line automatically"),
]


def commands() -> list[Command]:
    insecure = Flag("insecure", "Use an insecure registry")
    return [
        Command("serve", "Start Ollama", serve.serve, aliases=("start",), exact_args=0, needs_server=False,
                env=_SERVE_ENV, flags=[Flag("bundled", "Make the bundled SmolLM2 available as smollm2:135m")]),
        Command("create MODEL", "Create a model", create.create, exact_args=1, env=(_HOST_DOC,), flags=[
            Flag("file", 'Name of the Modelfile (default "Modelfile")', str, short="f"),
            Flag("quantize", "Quantize model to this level (e.g. q4_K_M)", str, short="q"),
            Flag("draft-quantize", "Quantize draft model to this level", str)]),
        Command("show MODEL", "Show information for a model", show.show, exact_args=1, env=(_HOST_DOC,), flags=[
            Flag("license", "Show license of a model"),
            Flag("modelfile", "Show Modelfile of a model"),
            Flag("parameters", "Show parameters of a model"),
            Flag("template", "Show template of a model"),
            Flag("system", "Show system message of a model"),
            Flag("verbose", "Show detailed model information", short="v")]),
        Command("run MODEL [PROMPT]", "Run a model", run.run, min_args=1, env=_RUN_ENV, flags=[
            Flag("keepalive", "Duration to keep a model loaded (e.g. 5m)", str),
            Flag("verbose", "Show timings for response"),
            insecure,
            Flag("nowordwrap", "Don't wrap words to the next line automatically"),
            Flag("format", "Response format (e.g. json)", str),
            Flag("think", "Enable thinking mode: true/false or high/medium/low for supported models", str,
                 no_opt_default="true"),
            Flag("hidethinking", "Hide thinking output (if provided)"),
            Flag("truncate", "For embedding models: truncate inputs exceeding context length (default: true). "
                             "Set --truncate=false to error instead"),
            Flag("dimensions", "Truncate output embeddings to specified dimension (embedding models only)", int)]),
        Command("stop MODEL", "Stop a running model", models.stop_model, exact_args=1, env=(_HOST_DOC,)),
        Command("pull MODEL", "Pull a model from a registry", transfer.pull, exact_args=1, env=(_HOST_DOC,),
                flags=[insecure]),
        Command("push MODEL", "Push a model to a registry", transfer.push, exact_args=1, env=(_HOST_DOC,),
                flags=[insecure]),
        Command("list", "List models", models.list_models, aliases=("ls",), env=(_HOST_DOC,)),
        Command("ps", "List running models", models.list_running, env=(_HOST_DOC,)),
        Command("cp SOURCE DESTINATION", "Copy a model", models.copy_model, exact_args=2, env=(_HOST_DOC,)),
        Command("rm MODEL [MODEL...]", "Remove a model", models.remove_models, min_args=1, env=(_HOST_DOC,)),
        Command("rpc", "Start a llama.cpp RPC worker that holds layers for a server elsewhere", rpc.rpc,
                exact_args=0, needs_server=False, flags=rpc.FLAGS),
    ]


def print_version() -> None:
    client = Client()
    try:
        server_version = client.request("GET", "/api/version").get("version", "")
    except CLIError:
        server_version = ""
        print("Warning: could not connect to a running Ollama instance")
    finally:
        client.close()
    if server_version:
        print(f"ollama version is {server_version}")
    if server_version != VERSION:
        print(f"Warning: client version is {VERSION}")


def _find(table: list[Command], name: str) -> Command | None:
    return next((c for c in table if name == c.name or name in c.aliases), None)


def _run_command(command: Command, argv: list[str]) -> int:
    parsed = parse(command.all_flags(), argv)
    if parsed["help"]:
        sys.stdout.write(command_help(PROGRAM, command))
        return 0
    command.check_args(parsed.args)
    assert command.handler is not None
    if not command.needs_server:
        return command.handler(None, parsed) or 0
    client = Client()
    try:
        client.heartbeat()
        return command.handler(client, parsed) or 0
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    table = commands()
    try:
        first = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), None)
        if first is None:
            parsed = parse(ROOT_FLAGS + [Flag("help", "", short="h")], argv)
            if parsed["version"]:
                print_version()
            else:
                sys.stdout.write(root_help(PROGRAM, SHORT, table, ROOT_FLAGS))
            return 0
        name, rest = argv[first], argv[:first] + argv[first + 1:]
        if name == "help":
            root = root_help(PROGRAM, SHORT, table, ROOT_FLAGS)
            target = _find(table, rest[0]) if rest else None
            if rest and target is None:  # cobra: the topic, then the usage (the help without its first line)
                root = f"Unknown help topic [`{' '.join(rest)}`]\n" + root.split("\n\n", 1)[1]
            sys.stdout.write(command_help(PROGRAM, target) if target else root)
            return 0
        command = _find(table, name)
        if command is None:
            raise UsageError(f'unknown command "{name}" for "{PROGRAM}"')
        return _run_command(command, rest)
    except (UsageError, CLIError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
