"""Ollama's template corpus: every shipped template renders its expected outputs byte for byte, and
every known Hugging Face chat template is recognised as the right named template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.template import Template, Values, named_template

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "conformance" / "ollama-templates"
PACKAGED = REPO / "engine" / "template" / "templates"

HELLO = {"role": "user", "content": "Hello, how are you?"}
GREAT = {"role": "assistant", "content": "I'm doing great. How can I help you today?"}
SHOW = {"role": "user", "content": "I'd like to show off how chat templating works!"}
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
CASES = {
    "user": [HELLO],
    "user-assistant-user": [HELLO, GREAT, SHOW],
    "system-user-assistant-user": [SYSTEM, HELLO, GREAT, SHOW],
}
# Ollama's TestTemplate drops one trailing space from these templates' output before comparing.
TRAILING_SPACE = {"chatqa.gotmpl", "llama2-chat.gotmpl", "mistral-instruct.gotmpl", "openchat.gotmpl",
                  "vicuna.gotmpl"}

TEMPLATE_FILES = sorted(p.name for p in CORPUS.glob("*.gotmpl"))


def test_corpus_has_all_templates():
    assert len(TEMPLATE_FILES) == 20


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("filename", TEMPLATE_FILES)
def test_template_renders_expected_output(corpus, filename, case):
    template = Template.parse((corpus / filename).read_text(encoding="utf-8"))
    got = template.execute(Values(messages=[dict(m) for m in CASES[case]]))
    if filename in TRAILING_SPACE and got.endswith(" "):
        got = got[:-1]
    assert got == (corpus / "testdata" / filename / case).read_text(encoding="utf-8")


def _jsonl_cases() -> list[tuple[str, str]]:
    lines = (CORPUS / "testdata" / "templates.jsonl").read_text(encoding="utf-8").splitlines()
    return [next(iter(json.loads(line).items())) for line in lines if line.strip()]


def test_jsonl_has_all_lines():
    assert len(_jsonl_cases()) == 35


@pytest.mark.parametrize(("expected", "jinja"), _jsonl_cases(), ids=[k for k, _ in _jsonl_cases()])
def test_named_template_detection(expected, jinja):
    named = named_template(jinja)
    assert named is not None
    assert named.name == expected
    assert str(Template.parse(named.template).root) != ""


def test_named_template_content_and_parameters(corpus):
    named = named_template(json.loads((corpus / "index.json").read_text())[0]["template"])
    assert named.name == "chatml"
    assert named.template == (corpus / "chatml.gotmpl").read_text()
    assert named.parameters == {"stop": ["<|im_start|>", "<|im_end|>"]}


def test_named_template_keeps_only_stop(corpus):
    jinja = next(e["template"] for e in json.loads((corpus / "index.json").read_text())
                 if e["name"] == "gemma3-instruct")
    assert named_template(jinja).parameters == {"stop": ["<end_of_turn>"]}  # temperature is dropped


def test_no_match_for_an_unrelated_template():
    assert named_template("{% for m in messages %}{{ m.content }}{% endfor %}" * 40) is None
    assert named_template("") is None


def test_near_match_within_distance(corpus):
    jinja = json.loads((corpus / "index.json").read_text())[0]["template"]
    assert named_template(jinja + "x" * 99).name == "chatml"
    assert named_template(jinja.replace("'", '"')).name == "chatml"


SHIPPED_FILES = sorted(p.name for p in CORPUS.iterdir() if p.is_file() and p.name != "README.md")


@pytest.mark.parametrize("name", SHIPPED_FILES)
def test_packaged_copy_matches_corpus(corpus, name):
    assert (PACKAGED / name).read_bytes() == (corpus / name).read_bytes()


def test_packaged_copies_complete():
    shipped = {p.name for p in PACKAGED.iterdir()}
    assert sum(n.endswith(".gotmpl") for n in shipped) == 20
    assert sum(n.endswith(".json") and n != "index.json" for n in shipped) == 20
    assert {"index.json", "LICENSE"} <= shipped
