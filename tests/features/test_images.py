"""Images through a vision projector (api-contract.md §3.5, runtime.md §3.6): SmolLM2 plus a tiny projector
GGUF that the tests write (tests/features/projector.py), created from two GGUFs in `files`, run through
llama.cpp's mtmd for real."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server
from tests.features.projector import IMAGE_TOKENS, png, write_projector

FAST = {"temperature": 0, "num_predict": 4}
PROMPT = "What is in this picture?"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


BLACK, WHITE, RED = (_b64(png(8, 8, c)) for c in ((0, 0, 0), (255, 255, 255), (255, 0, 0)))


def _upload(http: httpx.Client, path: Path) -> str:
    data = path.read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if http.head(f"/api/blobs/{digest}").status_code != 200:
        assert http.post(f"/api/blobs/{digest}", content=data).status_code in (200, 201)
    return digest


@pytest.fixture(scope="module")
def vision(http: httpx.Client, features_server: Server, smollm2_gguf: Path,
           tmp_path_factory: pytest.TempPathFactory) -> str:
    projector = write_projector(tmp_path_factory.mktemp("projector") / "mmproj.gguf")
    files = {"model.gguf": _upload(http, smollm2_gguf), "mmproj.gguf": _upload(http, projector)}
    r = http.post("/api/create", json={"model": "vision", "files": files, "stream": False})
    assert r.status_code == 200, r.text
    return "vision"


def test_projector_layer_and_capability(http: httpx.Client, features_server: Server, vision: str) -> None:
    show = http.post("/api/show", json={"model": vision}).json()
    assert show["capabilities"] == ["completion", "vision"]
    assert show["projector_info"]["clip.projector_type"] == "mlp"
    manifest = json.loads((features_server.models / "manifests/registry.ollama.ai/library/vision/latest").read_text())
    assert "application/vnd.ollama.image.projector" in [layer["mediaType"] for layer in manifest["layers"]]


def _generate(http: httpx.Client, model: str, **body: object) -> dict:
    r = http.post("/api/generate", json={"model": model, "prompt": PROMPT, "stream": False, "options": FAST,
                                         **body})
    assert r.status_code == 200, r.text
    return r.json()


def test_image_is_encoded_and_counted_in_the_prompt(http: httpx.Client, vision: str) -> None:
    text_only = _generate(http, vision)
    black = _generate(http, vision, images=[BLACK])
    # the marker's text is replaced by the image's embeddings: one position per patch
    assert black["prompt_eval_count"] == text_only["prompt_eval_count"] + IMAGE_TOKENS
    # the image changes what the model says (its embeddings reach the model)
    white = _generate(http, vision, images=[WHITE])
    assert len({text_only["response"], black["response"], white["response"]}) == 3
    assert _generate(http, vision, images=[BLACK])["response"] == black["response"]


def test_chat_images_with_placeholders(http: httpx.Client, vision: str) -> None:
    messages = [{"role": "user", "content": "Compare [img] with [img].", "images": [RED, BLACK]}]
    rendered = http.post("/api/chat", json={"model": vision, "messages": messages, "_debug_render_only": True}).json()
    assert rendered["_debug_info"] == {
        "rendered_template": "<|im_start|>user\nCompare [img-0] with [img-1].<|im_end|>\n<|im_start|>assistant\n",
        "image_count": 2}
    both = http.post("/api/chat", json={"model": vision, "messages": messages, "stream": False, "options": FAST})
    assert both.status_code == 200 and both.json()["done"]
    # each image takes the same number of positions: two images cost one image's more than one
    counts = []
    for images in ([RED], [RED, BLACK]):
        turn = [{"role": "user", "content": "Describe.", "images": images}]
        r = http.post("/api/chat", json={"model": vision, "messages": turn, "stream": False, "options": FAST})
        counts.append(r.json()["prompt_eval_count"])
    assert counts[1] == counts[0] + IMAGE_TOKENS


def test_markers_go_in_front_without_placeholders(http: httpx.Client, vision: str) -> None:
    body = {"model": vision, "prompt": "Describe.", "images": [RED, WHITE], "_debug_render_only": True}
    info = http.post("/api/generate", json=body).json()["_debug_info"]
    assert info["rendered_template"].startswith("<|im_start|>user\n[img-0][img-1]Describe.")
    assert info["image_count"] == 2


def test_bytes_that_are_not_an_image(http: httpx.Client, vision: str) -> None:
    r = http.post("/api/generate", json={"model": vision, "prompt": PROMPT, "images": [_b64(b"not an image")],
                                         "options": FAST})
    assert (r.status_code, r.json()) == (400, {"error": "failed to decode image 0"})


@pytest.mark.parametrize(("path", "body"), [
    ("/api/generate", {"prompt": PROMPT, "images": [RED]}),
    ("/api/chat", {"messages": [{"role": "user", "content": PROMPT, "images": [RED]}]}),
    ("/api/chat", {"messages": [{"role": "user", "content": PROMPT, "images": [RED]},  # in the history too
                                {"role": "assistant", "content": "A red square."},
                                {"role": "user", "content": "Sure?"}]}),
])
def test_a_text_model_refuses_images(http: httpx.Client, path: str, body: dict) -> None:
    """Ollama's runner refuses them; dropping them would let the model invent what it saw."""
    r = http.post(path, json={"model": "m", "options": FAST, **body})
    assert (r.status_code, r.json()) == (400, {"error": "this model is missing data required for image input"})
