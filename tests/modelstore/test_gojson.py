"""Go encoding/json, time.Time and fmt output, checked against values Go itself prints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from modelstore.gojson import (
    Float32,
    dumps,
    dumps_float32_list,
    encoder_bytes,
    float32_repr,
    format_mtime_ns,
    format_time,
    go_quote,
    go_sharp_value,
    go_value,
    local_time_from_timestamp,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (0.7, "0.7"),
        (1e-05, "0.00001"),
        (1e-06, "0.000001"),
        (1e-07, "1e-7"),
        (1.5e-10, "1.5e-10"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.2345e300, "1.2345e+300"),
        (123456789.0, "123456789"),
        (0.1 + 0.2, "0.30000000000000004"),
        (-2.5, "-2.5"),
        (0.0, "0"),
        (-0.0, "-0"),
        (5e-324, "5e-324"),
    ],
)
def test_float64_like_go(value: float, text: str) -> None:
    assert dumps(value) == text


def test_random_floats_round_trip_in_the_right_form() -> None:
    rng = np.random.default_rng(1)
    for value in rng.standard_normal(2000) * 10.0 ** rng.integers(-30, 30, 2000):
        text, g_text = dumps(float(value)), go_value(float(value))
        assert float(text) == value and float(g_text) == value
        assert ("e" in text) == (not 1e-6 <= abs(value) < 1e21)
        assert ("e" in g_text) == (not 1e-4 <= abs(value) < 1e6)


def test_integers_bools_and_null() -> None:
    assert dumps([0, -7, 2**63, True, False, None]) == "[0,-7,9223372036854775808,true,false,null]"


def test_non_finite_floats_are_rejected() -> None:
    with pytest.raises(ValueError):
        dumps(float("nan"))
    with pytest.raises(ValueError):
        dumps(float("inf"))


def test_html_and_line_separator_escapes() -> None:
    assert dumps("<|im_start|>a&b\u2028\u2029") == '"\\u003c|im_start|\\u003ea\\u0026b\\u2028\\u2029"'


def test_control_characters_and_non_ascii() -> None:
    assert dumps('"\\\n\r\t\b\f\x00\x1b\x7f') == '"\\"\\\\\\n\\r\\t\\b\\f\\u0000\\u001b\x7f"'
    assert dumps("héllo 日本 😀") == '"héllo 日本 😀"'


def test_invalid_utf8_becomes_replacement_escape() -> None:
    text = b"ok\xff".decode("utf-8", "surrogateescape")
    assert dumps(text) == '"ok\\ufffd"'


def test_struct_order_versus_sorted_maps() -> None:
    obj = {"b": 1, "a": {"z": [{"y": 1, "x": 2}], "c": 0}}
    assert dumps(obj) == '{"b":1,"a":{"z":[{"y":1,"x":2}],"c":0}}'
    assert dumps(obj, sort_keys=True) == '{"a":{"c":0,"z":[{"x":2,"y":1}]},"b":1}'


def test_bytes_are_base64() -> None:
    assert dumps(b"\x00\x01hi") == '"AAFoaQ=="'


def test_numpy_values() -> None:
    assert dumps(np.float32(1e-5)) == "0.00001"
    assert dumps(np.array([0.1, 2], dtype=np.float32)) == "[0.1,2]"
    assert dumps(np.float64(0.1)) == "0.1"
    assert dumps([np.int64(3), np.bool_(True), np.array([1, 2], dtype=np.uint8)]) == "[3,true,[1,2]]"


def test_encoder_appends_newline() -> None:
    assert encoder_bytes({"stop": ["<x>"]}, sort_keys=True) == b'{"stop":["\\u003cx\\u003e"]}\n'


def test_unsupported_type() -> None:
    with pytest.raises(TypeError):
        dumps(object())


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.010071029, "0.010071029"),
        (1e-5, "0.00001"),  # float32(1e-5) is 9.99999974738e-06 as a float64
        (100000.0, "100000"),
        (1e-7, "1e-7"),
        (3.4e38, "3.4e+38"),
        (-0.5, "-0.5"),
        (0.0, "0"),
        (16777216.0, "16777216"),
    ],
)
def test_float32_shortest(value: float, text: str) -> None:
    assert float32_repr(value) == text
    assert dumps(Float32(np.float32(value))) == text


def test_float32_list_round_trips() -> None:
    values = np.random.default_rng(7).standard_normal(256).astype(np.float32)
    text = dumps_float32_list(values)
    parsed = np.array([float(x) for x in text[1:-1].split(",")], dtype=np.float32)
    assert np.array_equal(parsed, values)
    # shortest: no float32 value needs more than 9 significant digits
    assert all(len(x.lstrip("-0.").replace(".", "").split("e")[0]) <= 9 for x in text[1:-1].split(","))


def test_format_time_utc_and_offsets() -> None:
    assert format_time(datetime(2024, 9, 12, 3, 54, 3, 516566, tzinfo=UTC)) == "2024-09-12T03:54:03.516566Z"
    minus7 = timezone(timedelta(hours=-7))
    assert (format_time(datetime(2025, 5, 10, 8, 6, 48, tzinfo=minus7), 639712648)
            == "2025-05-10T08:06:48.639712648-07:00")
    india = timezone(timedelta(hours=5, minutes=30))
    assert format_time(datetime(2025, 5, 10, 8, 6, 48, 500000, tzinfo=india)) == "2025-05-10T08:06:48.5+05:30"
    assert format_time(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00Z"


def test_local_time_and_mtime_ns() -> None:
    local = local_time_from_timestamp(1_700_000_000.25)
    assert local.utcoffset() is not None
    assert local.timestamp() == pytest.approx(1_700_000_000.25)
    text = format_mtime_ns(1_700_000_000_123456789)
    assert ".123456789" in text
    assert text.startswith(local.strftime("%Y-%m-%dT%H:%M:%S"))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (4096, "4096"),
        (4096.0, "4096"),
        (0.7, "0.7"),
        (1000000, "1e+06"),
        (1048576.0, "1.048576e+06"),
        (100000, "100000"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-3.0, "-3"),
        (True, "true"),
        ("<|eot_id|>", "<|eot_id|>"),
        (None, "<nil>"),
    ],
)
def test_go_value(value: object, text: str) -> None:
    assert go_value(value) == text


def test_go_sharp_value_quotes_strings_only() -> None:
    assert go_sharp_value("<|eot_id|>") == '"<|eot_id|>"'
    assert go_sharp_value(0.9) == "0.9"
    assert go_sharp_value(False) == "false"


def test_go_quote() -> None:
    assert go_quote('say "hi"\\') == '"say \\"hi\\"\\\\"'
    assert go_quote("a\nb\tc\x00\x7f") == '"a\\nb\\tc\\x00\\x7f"'
    assert go_quote("é日😀") == '"é日😀"'
    assert go_quote("\u200b\u00a0") == '"\\u200b\\u00a0"'
    assert go_quote(b"\xff".decode("utf-8", "surrogateescape")) == '"\\xff"'
