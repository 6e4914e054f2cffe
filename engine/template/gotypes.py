"""How Go values are modelled in Python for the template engine.

Plain Python values stand for Go's untyped data: None is a nil interface (Go's "invalid" value), bool, int
(Go int), float (float64), str, list/tuple (slices of interface{}), dict (map[string]interface{}).
Go's named types that change printing, JSON or field access are small classes here:

* `GoStruct` subclasses declare their fields (Go name, JSON name, omitempty rule) in declaration order;
* `Stringer` marks types with a String() method (fmt prints what `go_string()` returns);
* `JSONMarshaler` marks types with their own MarshalJSON;
* `NilSlice` / `GoMap.nil` keep a nil slice or map apart from an empty one (they print alike, but a nil
  one marshals to `null`).
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple


class Field(NamedTuple):
    name: str  # Go field name, as templates spell it (.Role)
    json: str  # JSON key
    omit: str = ""  # "" = always marshalled; "nil" = omitempty on an interface/pointer; "empty" = on len 0


class Stringer:
    """The Go type has a String() method: fmt prints what `go_string()` returns, at any nesting depth."""

    __slots__ = ()

    def go_string(self) -> str:
        raise NotImplementedError


class JSONMarshaler:
    """The Go type has its own MarshalJSON."""

    __slots__ = ()

    def marshal_json(self) -> str:
        raise NotImplementedError


class GoStruct:
    """A Go struct value. Struct values are always true in `if`."""

    __slots__ = ()
    GO_TYPE: ClassVar[str] = "struct"
    FIELDS: ClassVar[tuple[Field, ...]] = ()
    FIELD_NAMES: ClassVar[frozenset[str]] = frozenset()
    METHODS: ClassVar[dict[str, str]] = {}  # Go method name -> Python method name (methods without arguments)

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls.FIELD_NAMES = frozenset(f.name for f in cls.FIELDS)

    def __repr__(self) -> str:
        inner = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in self.FIELDS)
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, f.name) == getattr(other, f.name) for f in self.FIELDS)

    __hash__ = None  # type: ignore[assignment]


class ByteSlice:
    """A Go []byte: prints as `[1 2 3]`, marshals to base64. Subclasses decide where the bytes come from."""

    __slots__ = ()
    GO_TYPE: ClassVar[str] = "[]uint8"

    def as_bytes(self) -> bytes:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.as_bytes())


class NilSlice(tuple):
    """A nil Go slice: prints as `[]`, has length 0, marshals to `null`."""

    __slots__ = ()
    GO_TYPE: ClassVar[str] = "[]interface {}"


NIL_SLICE = NilSlice()


class GoMap(dict):
    """A named Go map type. `nil` marks a nil map; `zero` is what a missing key yields."""

    __slots__ = ("nil",)
    GO_TYPE: ClassVar[str] = "map[string]interface {}"
    METHODS: ClassVar[dict[str, str]] = {}

    def __init__(self, items: Any = (), nil: bool = False):
        super().__init__(items)
        self.nil = nil

    def zero(self) -> Any:
        return None


class GoSlice(list):
    """A named Go slice type; `nil` marks a nil slice."""

    __slots__ = ("nil",)
    GO_TYPE: ClassVar[str] = "[]interface {}"
    METHODS: ClassVar[dict[str, str]] = {}

    def __init__(self, items: Any = (), nil: bool = False):
        super().__init__(items)
        self.nil = nil


def is_true(value: Any) -> bool:
    """Go template truth: false, 0, nil, and empty strings, slices and maps are false; structs are true."""
    if value is None:
        return False
    if isinstance(value, (bool, int, float)):
        return value != 0
    if isinstance(value, GoStruct):
        return True
    return len(value) > 0  # strings, slices, maps and byte slices


def is_nil(value: Any) -> bool:
    """Nil in Go's sense: a nil interface, a nil slice or a nil map."""
    if value is None or isinstance(value, NilSlice):
        return True
    return isinstance(value, (GoMap, GoSlice)) and value.nil


def go_type_name(value: Any) -> str:
    """The Go type name used in error messages."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (bytes, bytearray)):
        return "[]uint8"
    go_type = getattr(value, "GO_TYPE", None)
    if go_type is not None:
        return go_type
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    return type(value).__name__
