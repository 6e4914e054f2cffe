"""`list`, `ps`, `show`, `cp`, `rm`, `stop`, `run` (not interactive), `-v` and `help` against a real server, and
every command against a server that is not running."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import httpx
import pytest

from server.cli.client import NOT_RUNNING
from server.cli.format import human_bytes
from server.version import VERSION
from tests.cli.conftest import pollama
from tests.conftest import Server, free_port
from tests.features.projector import png, write_projector
from tests.ggufs import embedding_gguf

RECENT = r"(Less than a second|1 second|\d+ seconds|About a minute|\d+ minutes) ago"


def tags(server: Server) -> dict[str, dict]:
    return {m["name"]: m for m in httpx.get(f"{server.url}/api/tags", timeout=30).json()["models"]}


def running(server: Server) -> list[dict]:
    return httpx.get(f"{server.url}/api/ps", timeout=30).json()["models"]


def test_list(shared_server: Server) -> None:
    model = tags(shared_server)["smollm2:135m"]
    done = pollama(shared_server, "list")
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    width = max(len(name) for name in tags(shared_server))
    assert re.fullmatch(rf"NAME {{{width - 4}}}    ID {{10}}    SIZE +    MODIFIED +", header), header
    row = next(r for r in rows if r.startswith("smollm2:135m "))
    assert re.fullmatch(rf"smollm2:135m {{{width - 8}}}{model['digest'][:12]}    98 MB    {RECENT} *    ", row), row
    filtered = pollama(shared_server, "ls", "SMOLLM2").stdout.splitlines()[1:]  # a prefix, any case
    assert [r.split()[0] for r in filtered] == ["smollm2:135m"]
    assert pollama(shared_server, "ls", "nothing-like-it").stdout == "NAME    ID    SIZE    MODIFIED \n"


def test_ps_with_none_and_with_a_model_loaded(shared_server: Server, short_model: str) -> None:
    httpx.post(f"{shared_server.url}/api/generate", json={"model": short_model, "keep_alive": 0}, timeout=60)
    empty = pollama(shared_server, "ps")
    assert empty.returncode == 0 and empty.stdout == "NAME    ID    SIZE    PROCESSOR    CONTEXT    UNTIL \n"

    assert pollama(shared_server, "run", "--keepalive", "10m", short_model, "Hi").returncode == 0  # loads it for 10m
    loaded = next(m for m in running(shared_server) if m["name"] == short_model)
    header, row = pollama(shared_server, "ps").stdout.splitlines()
    assert header.split() == ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]
    columns = [header.index(title) for title in ("ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL")]
    cells = [row[a:b].strip() for a, b in zip([0, *columns], [*columns, len(row)], strict=True)]
    assert cells[:5] == [short_model, loaded["digest"][:12], human_bytes(loaded["size"]), "100% CPU",
                         str(loaded["context_length"])]
    assert re.fullmatch(r"(9|10) minutes from now", cells[5]), cells[5]
    assert row.endswith(cells[5] + "    ")

    httpx.post(f"{shared_server.url}/api/generate", json={"model": short_model, "keep_alive": -1}, timeout=60)
    assert pollama(shared_server, "ps").stdout.splitlines()[1].split()[-1] == "Forever"

    stopped = pollama(shared_server, "stop", short_model)
    assert stopped.returncode == 0 and stopped.stdout == "", stopped.stderr
    assert all(m["name"] != short_model for m in running(shared_server))
    missing = pollama(shared_server, "stop", "nope")
    assert missing.returncode == 1 and missing.stderr == 'Error: couldn\'t find model "nope" to stop\n'


def test_show_sections(shared_server: Server, short_model: str) -> None:
    done = pollama(shared_server, "show", "smollm2:135m")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "  Model\n"
        "    architecture        llama      \n"
        "    parameters          134.52M    \n"
        "    context length      8192       \n"
        "    embedding length    576        \n"
        "    quantization        Q4_1       \n"
        "\n"
        "  Capabilities\n"
        "    completion    \n"
        "    tools         \n"
        "\n"
        "  Parameters\n"
        '    stop    "<|im_start|>"    \n'
        '    stop    "<|im_end|>"      \n'
        "\n")
    derived = pollama(shared_server, "show", short_model).stdout
    assert "  Parameters\n" in derived
    assert '    stop           "<|im_start|>"    \n' in derived  # the column is as wide as its widest cell
    assert "    temperature    0" + " " * 13 + "    \n" in derived
    license_line = "Permission is hereby granted, free of charge, to any person obtaining a copy of this software"
    created = httpx.post(f"{shared_server.url}/api/create", timeout=300, json={
        "model": "h14-described", "from": "smollm2:135m", "stream": False,
        "system": "You are terse.\n\n  You answer in one word.\nNever more.", "license": f"MIT\n{license_line}"})
    assert created.status_code == 200, created.text
    described = pollama(shared_server, "show", "h14-described").stdout
    assert described.endswith(
        "  System\n"
        f"    {'You are terse.':<23}    \n"  # two lines of it, trimmed, then an ellipsis
        "    You answer in one word.    \n"
        f"    {'...':<23}    \n"
        "\n"
        "  License\n"
        f"    MIT{' ' * (len(license_line) - 3)}    \n"  # long text wraps at 100 columns here, not 30
        f"    {license_line}    \n"
        "\n"), described
    httpx.request("DELETE", f"{shared_server.url}/api/delete", json={"model": "h14-described"}, timeout=60)
    verbose = pollama(shared_server, "show", "-v", "smollm2:135m").stdout
    metadata = verbose[verbose.index("  Metadata\n"):].splitlines()
    assert re.fullmatch(r"    general\.architecture +llama +", next(r for r in metadata if "general.arch" in r))
    assert re.fullmatch(r"    tokenizer\.ggml\.tokens +\[\S+ \.\.\.\+\d+ more\] +",
                        next(r for r in metadata if "tokenizer.ggml.tokens " in r))
    assert "  Tensors\n" in verbose and re.search(r"\n    token_embd\.weight +Q\w+ +\[576 49152\] +\n", verbose)


def test_copy_and_remove_several(shared_server: Server) -> None:
    for name in ("h14-a", "h14-b"):
        done = pollama(shared_server, "cp", "smollm2:135m", name)
        assert done.returncode == 0 and done.stdout == f"copied 'smollm2:135m' to '{name}'\n", done.stderr
    done = pollama(shared_server, "rm", "h14-a", "h14-b")
    assert done.returncode == 0 and done.stdout == "deleted 'h14-a'\ndeleted 'h14-b'\n", done.stderr
    assert not {"h14-a:latest", "h14-b:latest"} & set(tags(shared_server))
    missing = pollama(shared_server, "rm", "h14-a")
    assert missing.returncode == 1 and missing.stderr == "Error: model 'h14-a' not found\n"


def test_run_a_prompt_and_piped_input(shared_server: Server, short_model: str) -> None:
    answer = pollama(shared_server, "run", short_model, "Name a color.")
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.endswith("\n\n") and answer.stdout.strip()
    assert "\x1b" not in answer.stdout + answer.stderr  # no spinner or wrapping escapes in a pipe
    again = pollama(shared_server, "run", short_model, stdin="Name a color.")
    assert again.stdout == answer.stdout  # greedy: piped text is the same prompt
    # a prompt whose answer is long, so the model's 8-token limit ends it
    verbose = pollama(shared_server, "run", "--verbose", short_model, "Write a poem about the sea.")
    assert re.search(r"^eval count: +8 token\(s\)$", verbose.stderr, re.M), verbose.stderr
    assert re.search(r"^eval rate: +\d+\.\d\d tokens/s$", verbose.stderr, re.M)
    assert re.search(r"^prompt eval rate: +\d+\.\d\d tokens/s$", verbose.stderr, re.M)
    as_json = pollama(shared_server, "run", "--format", "json", short_model, "A JSON object with a color.")
    assert as_json.stdout.lstrip().startswith("{")
    bad_think = pollama(shared_server, "run", "--think=very", short_model, "hi")
    assert bad_think.returncode == 1 and bad_think.stderr == (
        'Error: invalid value for --think: "very" (must be true, false, high, medium, low, or max)\n')
    no_thinking = pollama(shared_server, "run", "--think", short_model, "hi")
    assert no_thinking.returncode == 1 and "does not support thinking" in no_thinking.stderr


def test_api_key_is_sent(server_factory) -> None:
    server = server_factory(env={"POLLAMA_API_KEYS": "sesame"})
    refused = pollama(server, "list")
    assert refused.returncode == 1 and refused.stderr.startswith("Error: ") and "Traceback" not in refused.stderr
    allowed = pollama(server, "list", OLLAMA_API_KEY="sesame")
    assert allowed.returncode == 0 and allowed.stdout == "NAME    ID    SIZE    MODIFIED \n", allowed.stderr


def test_version_and_help(shared_server: Server) -> None:
    assert pollama(shared_server, "-v").stdout == f"ollama version is {VERSION}\n"
    root = pollama(shared_server, "help").stdout
    assert root.startswith("Large language model runner\n\nUsage:\n  pollama [flags]\n  pollama [command]\n")
    for name in ("serve", "create", "show", "run", "stop", "pull", "push", "list", "ps", "cp", "rm", "help"):
        assert re.search(rf"^  {name} +\S", root, re.M), name
    assert pollama(shared_server, "--help").stdout == root
    run_help = pollama(shared_server, "run", "--help").stdout
    assert run_help.startswith("Run a model\n\nUsage:\n  pollama run MODEL [PROMPT] [flags]\n")
    assert '      --think string[="true"]   Enable thinking mode' in run_help
    assert pollama(shared_server, "help", "ls").stdout.startswith("List models\n\nUsage:\n  pollama list [flags]\n\n"
                                                                  "Aliases:\n  list, ls\n")
    assert pollama(shared_server, "help", "bogus").stdout == "Unknown help topic [`bogus`]\n" + root.split("\n\n", 1)[1]
    for args, error in ((["bogus"], 'unknown command "bogus" for "pollama"'),
                        (["run"], "requires at least 1 arg(s), only received 0"),
                        (["cp", "a"], "accepts 2 arg(s), received 1"),
                        (["list", "--nope"], "unknown flag: --nope")):
        done = pollama(shared_server, *args)
        assert done.returncode == 1 and done.stderr == f"Error: {error}\n", args


@pytest.mark.parametrize("args", [
    ["list"], ["ls"], ["ps"], ["show", "m"], ["run", "m", "hi"], ["run", "m"], ["stop", "m"], ["pull", "m"],
    ["push", "m"], ["cp", "a", "b"], ["rm", "a", "b"], ["create", "m"],
])
def test_every_command_without_a_server(args: list[str]) -> None:
    done = pollama(f"127.0.0.1:{free_port()}", *args)
    assert done.returncode == 1
    assert done.stderr == f"Error: {NOT_RUNNING}\n" and done.stdout == ""


def test_version_without_a_server() -> None:
    done = pollama(f"127.0.0.1:{free_port()}", "--version")
    assert done.returncode == 0
    assert done.stdout.splitlines() == ["Warning: could not connect to a running Ollama instance",
                                        f"Warning: client version is {VERSION}"]


def test_run_an_embedding_model(shared_server: Server, smollm2_gguf: Path, tmp_path: Path) -> None:
    """`run` on an embedding model prints the vector, as JSON, shortened with --dimensions."""
    data = embedding_gguf(smollm2_gguf, tmp_path / "embedding.gguf").read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    httpx.post(f"{shared_server.url}/api/blobs/{digest}", content=data, timeout=120).raise_for_status()
    created = httpx.post(f"{shared_server.url}/api/create", timeout=300,
                         json={"model": "h14-embed", "files": {"e.gguf": digest}, "stream": False})
    assert created.status_code == 200, created.text
    full = pollama(shared_server, "run", "h14-embed", "a cat sat on the mat")
    assert full.returncode == 0, full.stderr
    vector = json.loads(full.stdout)
    expected = httpx.post(f"{shared_server.url}/api/embed", timeout=120,
                          json={"model": "h14-embed", "input": "a cat sat on the mat"}).json()["embeddings"][0]
    assert len(vector) == 576 and vector == pytest.approx(expected, abs=1e-6)
    short = pollama(shared_server, "run", "--dimensions", "4", "h14-embed", "a cat sat on the mat")
    assert len(json.loads(short.stdout)) == 4
    empty = pollama(shared_server, "run", "h14-embed")
    assert empty.returncode == 1 and empty.stderr == (
        'Error: embedding models require input text. Usage: ollama run h14-embed "your text here"\n')
    httpx.request("DELETE", f"{shared_server.url}/api/delete", json={"model": "h14-embed"}, timeout=60)


THINKING_TEMPLATE = """{{- range .Messages }}<|im_start|>{{ .Role }}
{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
<think>
"""


def test_thinking_is_shown_and_hidden(shared_server: Server) -> None:
    """A model whose template opens a <think> block thinks; run shows it under Thinking..., --hidethinking
    hides it, --think=false turns it off (the text is then the answer)."""
    created = httpx.post(f"{shared_server.url}/api/create", timeout=300, json={
        "model": "h14-thinker", "from": "smollm2:135m", "template": THINKING_TEMPLATE, "stream": False,
        "parameters": {"temperature": 0, "num_predict": 6}})
    assert created.status_code == 200, created.text
    prompt = "Write a poem about the sea."
    shown = pollama(shared_server, "run", "h14-thinker", prompt)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("Thinking...\n") and shown.stdout.endswith("\n\n")
    thought = shown.stdout.removeprefix("Thinking...\n").removesuffix("\n\n")
    assert thought.strip()
    hidden = pollama(shared_server, "run", "--hidethinking", "h14-thinker", prompt)
    assert hidden.returncode == 0 and hidden.stdout == "\n\n", hidden.stdout
    off = pollama(shared_server, "run", "--think=false", "h14-thinker", prompt)
    assert off.stdout.strip() and not off.stdout.startswith("Thinking...")
    httpx.request("DELETE", f"{shared_server.url}/api/delete", json={"model": "h14-thinker"}, timeout=60)


def test_an_image_path_is_attached_for_a_vision_model(shared_server: Server, short_model: str, smollm2_gguf: Path,
                                                      tmp_path: Path) -> None:
    """For a model with a projector, a path to an image in the prompt is read and sent with it."""
    files = {}
    for name, path in (("model.gguf", smollm2_gguf), ("mmproj.gguf", write_projector(tmp_path / "mmproj.gguf"))):
        data = path.read_bytes()
        files[name] = "sha256:" + hashlib.sha256(data).hexdigest()
        httpx.post(f"{shared_server.url}/api/blobs/{files[name]}", content=data, timeout=120).raise_for_status()
    created = httpx.post(f"{shared_server.url}/api/create", timeout=300, json={
        "model": "h14-vision", "files": files, "stream": False, "parameters": {"temperature": 0, "num_predict": 4}})
    assert created.status_code == 200, created.text
    image = tmp_path / "red square.png"
    image.write_bytes(png(32, 32, (255, 0, 0)))
    escaped = str(image).replace(" ", "\\ ")
    done = pollama(shared_server, "run", "h14-vision", f"What is in {escaped}?")
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"Added image '{image}'\n" and done.stdout.strip()
    text_only = pollama(shared_server, "run", short_model, f"What is in {escaped}?")
    assert "Added image" not in text_only.stderr  # a model without vision gets the path as text
    httpx.request("DELETE", f"{shared_server.url}/api/delete", json={"model": "h14-vision"}, timeout=60)
