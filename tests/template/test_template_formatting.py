"""Go's value formatting (fmt, strconv, encoding/json) and the edit distance behind named templates. Rendering
speed is bench/template.py's."""

from __future__ import annotations

import random

import pytest

from engine.template.gofmt import format_float, go_quote
from engine.template.gojson import marshal
from engine.template.named import levenshtein
from engine.template.printf import sprintf


@pytest.mark.parametrize(("value", "shortest_g", "json"), [
    (0.0, "0", "0"), (-0.0, "-0", "-0"), (1.0, "1", "1"), (1.5, "1.5", "1.5"), (100000.0, "100000", "100000"),
    (1e6, "1e+06", "1000000"), (1234567.0, "1.234567e+06", "1234567"), (0.0001, "0.0001", "0.0001"),
    (1e-05, "1e-05", "0.00001"), (1e-07, "1e-07", "1e-7"), (1e21, "1e+21", "1e+21"),
    (1e20, "1e+20", "100000000000000000000"),
    (1 / 3, "0.3333333333333333", "0.3333333333333333"), (-2.5e-8, "-2.5e-08", "-2.5e-8"),
])
def test_float_formatting(value, shortest_g, json):
    assert format_float(value) == shortest_g
    assert marshal(value) == json


@pytest.mark.parametrize(("fmt", "args", "expected"), [
    ("%.3g|%.3g|%.3g", [1.0, 1234.0, 100.0], "1|1.23e+03|100"),
    ("%8.3f|%-8.2e|%+d|% d|%x|%X|%o|%#x|%b", [3.14159, 1234.5, 5, 5, 255, 255, 8, 255, 5],
     "   3.142|1.23e+03|+5| 5|ff|FF|10|0xff|101"),
    ("%q|%v|%s|%5s|%-5s|%.2s", ["a\"b\n", [1, "a"], {"k": 1}, "ab", "ab", "héllo"],
     '"a\\"b\\n"|[1 a]|map[k:%!s(int=1)]|   ab|ab   |hé'),  # Go applies %s to map values too
    ("%d%%|%c|%q|%U", [5, 0x1F600, 65, 0x1F600], "5%|😀|'A'|U+1F600"),
    ("%t|%v|%d", [True, None, True], "true|<nil>|%!d(bool=true)"),
    ("%", [], "%!(NOVERB)"),
    ("%*d|%.*f", [5, 42, 2, 3.14159], "   42|3.14"),
    ("%x|%X|%x", [3.5, 3.5, 0.0], "0x1.cp+01|0X1.CP+01|0x0p+00"),
    ("%+v|%+v|%v", [{"a": 1}, 5, True], "map[a:1]|5|true"),
    ("%+q|%#q|%#q", ["é\n", "raw", "a`b"], '"\\u00e9\\n"|`raw`|"a`b"'),
])
def test_sprintf(fmt, args, expected):
    assert sprintf(fmt, args) == expected


def test_go_quote():
    assert go_quote("plain") == '"plain"'
    assert go_quote('a"b\\c\n\t\x01é\u200b') == '"a\\"b\\\\c\\n\\t\\x01é\\u200b"'


def test_json_string_escaping():
    assert marshal("<a>&b\u2028\"\\\n\x1b\b\fé😀") == (
        '"\\u003ca\\u003e\\u0026b\\u2028\\"\\\\\\n\\u001b\\b\\fé😀"')
    assert marshal({"b": [1, None, True], "a": {"y": 1.5, "x": "s"}}) == (
        '{"a":{"x":"s","y":1.5},"b":[1,null,true]}')


def _reference_levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def test_levenshtein_matches_reference():
    rng = random.Random(7)
    for _ in range(500):
        a = "".join(rng.choice("ab{}é😀") for _ in range(rng.randint(0, 40)))
        b = "".join(rng.choice("ab{}é😀") for _ in range(rng.randint(0, 40)))
        assert levenshtein(a, b) == _reference_levenshtein(a, b), (a, b)
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("😀x", "x") == 1  # code points, not bytes
