"""Model names: Ollama's grammar (`types/model/name.go`), display forms and on-disk parts.

Source suffixes: a trailing `:local` (any case) only asks for local resolution, so `parse_name` drops
it. `:cloud` and `-cloud` tags ask for ollama.com cloud models, which pollama does not support: they
stay ordinary tags, which no local manifest has, so such names resolve to "not found".
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

# Stands in for a part that a separator promised but that is empty; it never validates.
MISSING_PART = "!MISSING!"

_PART_KINDS = ("host", "namespace", "model", "tag")
_MAX_LENGTH = {"host": 350, "namespace": 80, "model": 80, "tag": 80}
_LOCAL_SUFFIX = "local"


def _is_word_byte(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "_")


def is_valid_part(kind: str, part: str) -> bool:
    """Validate one part; kind is `host`, `namespace`, `model` or `tag`."""
    if not 1 <= len(part.encode("utf-8", "surrogateescape")) <= _MAX_LENGTH[kind]:
        return False
    if not _is_word_byte(part[0]):
        return False
    for c in part[1:]:
        if c in "_-" or _is_word_byte(c):
            continue
        if c == "." and kind != "namespace":
            continue
        if c == ":" and kind == "host":
            continue
        return False
    return True


@dataclass(frozen=True)
class Name:
    host: str
    namespace: str
    model: str
    tag: str

    def is_valid(self) -> bool:
        """Fully qualified: all four parts present and valid."""
        return all(is_valid_part(kind, part) for kind, part in zip(_PART_KINDS, self.parts(), strict=True))

    def __str__(self) -> str:
        text = "".join(part + "/" for part in (self.host, self.namespace) if part) + self.model
        return text + (":" + self.tag if self.tag else "")

    def display_shortest(self) -> str:
        """`model:tag`, `ns/model:tag` or `host/ns/model:tag`; the tag is always shown."""
        if self.host.lower() != DEFAULT_HOST:
            prefix = f"{self.host}/{self.namespace}/"
        elif self.namespace.lower() != DEFAULT_NAMESPACE:
            prefix = f"{self.namespace}/"
        else:
            prefix = ""
        return f"{prefix}{self.model}:{self.tag}"

    def display_namespace_model(self) -> str:
        return f"{self.namespace}/{self.model}"

    def filepath_parts(self) -> tuple[str, str, str, str]:
        """Directory parts of the manifest path, case kept; the name must be valid."""
        if not self.is_valid():
            raise ValueError(f"invalid model name: {self}")
        return self.parts()

    def parts(self) -> tuple[str, str, str, str]:
        return (self.host, self.namespace, self.model, self.tag)

    def equal_fold(self, other: Name) -> bool:
        """Equal ignoring case, part by part."""
        return all(a.lower() == b.lower() for a, b in zip(self.parts(), other.parts(), strict=True))


def _cut_promised(s: str, sep: str) -> tuple[str, str, bool]:
    """Cut at the last sep; an empty side becomes MISSING_PART (so the name fails validation)."""
    index = s.rfind(sep)
    if index < 0:
        return s, "", False
    return s[:index] or MISSING_PART, s[index + len(sep) :] or MISSING_PART, True


def _drop_local_suffix(s: str) -> str:
    index = s.rfind(":")
    if index >= 0 and s[index + 1 :].strip().lower() == _LOCAL_SUFFIX:
        return s[:index]
    return s


def parse_name_bare(s: str) -> Name:
    """Parse right to left without defaults (Go `ParseNameBare`); the scheme is dropped."""
    host = namespace = tag = ""
    if s.rfind(":") > s.rfind("/"):
        s, tag, _ = _cut_promised(s, ":")
    s, model, promised = _cut_promised(s, "/")
    if not promised:
        return Name(host, namespace, s, tag)
    s, namespace, promised = _cut_promised(s, "/")
    if not promised:
        return Name(host, s, model, tag)
    _, sep, after = s.partition("://")
    return Name(after if sep else s, namespace, model, tag)


def parse_name(s: str) -> Name:
    """Go `ParseName` on a request name: `:local` dropped, then defaults merged into empty parts.

    The result may be invalid; check `is_valid()`.
    """
    bare = parse_name_bare(_drop_local_suffix(s.strip()))
    return Name(
        bare.host or DEFAULT_HOST,
        bare.namespace or DEFAULT_NAMESPACE,
        bare.model,
        bare.tag or DEFAULT_TAG,
    )


def name_from_filepath_parts(parts: tuple[str, ...] | list[str]) -> Name | None:
    """The name stored at `manifests/<host>/<ns>/<model>/<tag>`, or None when not a valid name."""
    if len(parts) != 4:
        return None
    name = Name(*parts)
    return name if name.is_valid() else None
