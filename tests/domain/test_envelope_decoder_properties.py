"""Property: whatever bytes a device writes, the envelope decoder either returns an envelope
PostgreSQL can store or refuses it as ``invalid_json``/``invalid_request``; nothing else escapes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cloudwatcher.domain.envelope import Envelope, InvalidEnvelope, parse_envelope

# Every code point, lone surrogates and NUL included (st.text leaves surrogates out by default).
hostile_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=12)
hostile_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=20,
)
envelope_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["get_parts", "diagnose_fault"]) | hostile_text, "user": hostile_text | st.just("a@b.c")},
    optional={"metadata": st.dictionaries(hostile_text, hostile_text, max_size=3), "payload": hostile_json},
)


def _as_bytes(document: Any) -> bytes:
    """JSON text with every non-ASCII character escaped, so lone surrogates survive as ``\\udXXX``."""
    return json.dumps(document, ensure_ascii=True).encode()


def _deeply_nested(depth: int, leaf: str) -> bytes:
    return ("[" * depth + json.dumps(leaf) + "]" * depth).encode()


def _storable(value: Any) -> bool:
    """True when every string in ``value`` encodes as UTF-8 and holds no NUL."""
    stack = [value]
    while stack:
        item = stack.pop()
        texts: list[Any] = []
        if isinstance(item, str):
            texts = [item]
        elif isinstance(item, dict):
            texts = list(item)
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        for text in texts:
            if "\x00" in text:
                return False
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True


def _decodes_or_refuses(raw: bytes) -> Envelope | None:
    try:
        envelope = parse_envelope(raw)
    except InvalidEnvelope as refusal:
        assert refusal.code in ("invalid_json", "invalid_request")
        assert _storable(str(refusal)), "the refusal's message must itself be storable"
        return None
    assert _storable([envelope.request_type, envelope.user_email, envelope.metadata, envelope.payload])
    return envelope


@settings(max_examples=400, deadline=None)
@given(envelope_like)
def test_any_envelope_is_either_storable_or_refused(document: dict[str, Any]) -> None:
    envelope = _decodes_or_refuses(_as_bytes(document))
    if envelope is None:
        return
    assert envelope.user_email == document["user"]


@settings(max_examples=200, deadline=None)
@given(hostile_json)
def test_any_json_value_is_either_storable_or_refused(document: Any) -> None:
    _decodes_or_refuses(_as_bytes(document))


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=5000), hostile_text)
def test_deep_nesting_around_any_string_is_never_more_than_a_refusal(depth: int, leaf: str) -> None:
    assert _decodes_or_refuses(_deeply_nested(depth, leaf)) is None  # not an object: never an envelope


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_either_an_envelope_or_refused(raw: bytes) -> None:
    _decodes_or_refuses(raw)


def test_a_lone_surrogate_is_refused_as_invalid_json_wherever_it_is() -> None:
    base = {"type": "get_parts", "user": "a@b.c", "payload": {"location": "x"}}
    for hostile in (
        {**base, "metadata": {"note": "\ud800"}},
        {**base, "metadata": {"\udfff": "x"}},
        {**base, "payload": {"location": "x", "deep": [[{"k": "\udc80"}]]}},
        {**base, "user": "a\x00@b.c"},
        {**base, "extra-\x00": 1},
    ):
        try:
            parse_envelope(_as_bytes(hostile))
        except InvalidEnvelope as refusal:
            assert refusal.code == "invalid_json"
        else:
            raise AssertionError(f"{hostile!a} was accepted")


def test_a_valid_surrogate_pair_is_one_character_and_accepted() -> None:
    envelope = parse_envelope(b'{"type": "t", "user": "a@b.c", "metadata": {"m": "\\ud83d\\ude00"}}')
    assert envelope.metadata == {"m": "\U0001f600"}
