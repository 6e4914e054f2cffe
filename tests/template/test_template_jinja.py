"""render_jinja: Hugging Face chat templates rendered the way transformers renders them, sandboxed."""

from __future__ import annotations

import datetime

import pytest

from engine.template import TemplateError, render_jinja

SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, "
    "trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def test_smollm2_chatml():
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "How are you?"}]
    assert render_jinja(SMOLLM2_CHAT_TEMPLATE, messages) == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
        "<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n")


def test_smollm2_with_system_and_no_generation_prompt():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert render_jinja(SMOLLM2_CHAT_TEMPLATE, messages, add_generation_prompt=False) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n")


def test_trim_and_lstrip_blocks():
    template = ("{% for m in messages %}\n    {% if m.role == 'user' %}\n[{{ m.content }}]\n"
                "    {% endif %}\n{% endfor %}")
    messages = [{"role": "user", "content": "a"}, {"role": "x", "content": "b"}]
    assert render_jinja(template, messages) == "[a]\n"


def test_helpers_and_variables():
    template = ("{{ bos_token }}{{ messages[0].content | tojson }}{{ tools | tojson }}{{ eos_token }}"
                "{{ strftime_now('%Y') }}{{ custom }}")
    got = render_jinja(template, [{"role": "user", "content": "é<b>"}], tools=[{"name": "f"}],
                       bos_token="<s>", eos_token="</s>", custom="!")
    assert got == f'<s>"é<b>"[{{"name": "f"}}]</s>{datetime.datetime.now().year}!'


def test_loop_controls():
    template = ("{% for m in messages %}{% if loop.index > 2 %}{% break %}{% endif %}"
                "{{ m.content }}{% endfor %}")
    assert render_jinja(template, [{"content": c} for c in "abcd"]) == "ab"


def test_raise_exception_becomes_template_error():
    with pytest.raises(TemplateError, match="Conversation roles must alternate"):
        render_jinja("{{ raise_exception('Conversation roles must alternate') }}", [])


def test_syntax_error_becomes_template_error():
    with pytest.raises(TemplateError):
        render_jinja("{% for %}", [])


@pytest.mark.parametrize("escape", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ messages.__class__.__base__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{% set x = messages.append({'role': 'user'}) %}",
    "{{ messages[0].update({'role': 'system'}) }}",
])
def test_sandbox_escape_attempts_raise(escape):
    with pytest.raises(TemplateError):
        render_jinja(escape, [{"role": "user", "content": "x"}])


def test_unsafe_attribute_reads_as_undefined():
    # like transformers, undefined values print as nothing; the sandbox hands out no function globals
    assert render_jinja("{{ raise_exception.__globals__ }}", []) == ""
