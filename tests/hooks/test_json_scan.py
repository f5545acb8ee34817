"""
The streaming JSON check (``hooks/_json_scan.py``) against ``json.loads``: whatever the document and however it
is cut into chunks, the scanner accepts exactly what ``json.loads`` accepts from its UTF-8 text (NaN and the
infinities aside, which JSON does not have), refuses every strict prefix of a document as incomplete, and picks
the top-level key's value as ``json.loads`` reads it.
"""

from __future__ import annotations

import itertools
import json
import re
import tracemalloc
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_devrev.hooks._json_scan import MAX_DEPTH, MAX_PICKED_BYTES, JsonError, JsonScanner, NotAString
from tests.properties import sized

WHITESPACE = st.text(alphabet=" \t\n\r", max_size=3)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)
DOCUMENTS = st.dictionaries(st.sampled_from(["recording", "a", "events", ""]), VALUES, max_size=4) | VALUES
#: Bytes a mutation puts in: every byte that means something to JSON, some that never do, and a few UTF-8 ones.
MUTATION_BYTES = st.sampled_from(
    [*b'{}[]:,"\\/ \t\n\r0123456789+-.eEtrufalsnbuxNI', 0x00, 0x1F, 0x7F, 0x80, 0xBF, 0xC3, 0xE2, 0xED, 0xF0, 0xFF]
)


def serialized(draw: Any, value: Any) -> str:
    """``value`` as JSON, with whitespace drawn between its tokens and its strings escaped one way or another."""
    ws = draw(WHITESPACE)
    if isinstance(value, dict):
        members = [f"{serialized(draw, key)}{draw(WHITESPACE)}:{serialized(draw, item)}" for key, item in value.items()]
        return ws + "{" + ",".join(members) + draw(WHITESPACE) + "}" + draw(WHITESPACE)
    if isinstance(value, list):
        return ws + "[" + ",".join(serialized(draw, item) for item in value) + draw(WHITESPACE) + "]" + ws
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))
    if isinstance(value, str) and draw(st.booleans()):
        text = text.replace("/", "\\/")
    if isinstance(value, str) and draw(st.booleans()):
        # Letters as \u escapes: a key then spells "recording" only once decoded.
        text = re.sub(r"\\(?:u....|.)|([a-z])", lambda m: f"\\u{ord(m[1]):04x}" if m[1] else m[0], text)
    return ws + text + ws


@st.composite
def documents(draw: Any, strategy: Any = DOCUMENTS) -> tuple[Any, bytes]:
    value = draw(strategy)
    return value, serialized(draw, value).encode()


@st.composite
def cuts(draw: Any, body: bytes) -> list[bytes]:
    """``body`` cut into chunks at drawn places (empty chunks included)."""
    points = sorted(draw(st.lists(st.integers(0, len(body)), max_size=8)))
    edges = [0, *points, len(body)]
    return [body[start:stop] for start, stop in itertools.pairwise(edges)]


def scan(chunks: list[bytes]) -> JsonScanner:
    scanner = JsonScanner("recording")
    for chunk in chunks:
        scanner.feed(chunk)
    scanner.finish()
    return scanner


def accepts(chunks: list[bytes]) -> bool:
    """Whether the scanner takes ``chunks`` as one whole document."""
    try:
        scan(chunks)
    except JsonError:
        return False
    return True


def json_loads_accepts(body: bytes) -> bool:
    """The reference: ``json.loads`` of the body's strict UTF-8 text, NaN and the infinities refused."""

    def no_constants(name: str) -> None:
        raise ValueError(name)

    try:
        json.loads(body.decode("utf-8"), parse_constant=no_constants)
    except (ValueError, RecursionError):
        return False
    return True


def expected_pick(value: Any) -> Any:
    if not isinstance(value, dict) or "recording" not in value:
        return None
    return value["recording"]


def assert_picked(scanner: JsonScanner, value: Any) -> None:
    expected = expected_pick(value)
    if isinstance(expected, str) and len(expected) * 12 <= MAX_PICKED_BYTES:  # kept whole, escapes and all
        assert scanner.picked == expected
    elif isinstance(value, dict) and "recording" in value:
        assert isinstance(scanner.picked, (NotAString, str))
    else:
        assert scanner.picked is None


@pytest.mark.property
@sized(400)
@given(st.data())
def test_any_document_in_any_chunks_is_accepted_and_its_key_picked(data):
    value, body = data.draw(documents())
    assert json_loads_accepts(body)

    for chunks in ([body[i : i + 1] for i in range(len(body))], data.draw(cuts(body))):
        scanner = scan(chunks)

        assert scanner.bytes == len(body)
        assert_picked(scanner, value)


@pytest.mark.property
@sized(150)
@given(st.data())
def test_every_strict_prefix_of_an_object_or_array_is_refused_as_incomplete(data):
    containers = st.dictionaries(st.text(max_size=8), VALUES, max_size=4) | st.lists(VALUES, max_size=4)
    _, body = data.draw(documents(containers))
    body = body.rstrip(b" \t\n\r")

    for size in range(len(body)):
        scanner = JsonScanner("recording")
        scanner.feed(body[:size])  # a prefix is never wrong, only short
        with pytest.raises(JsonError, match="incomplete"):
            scanner.finish()


@pytest.mark.property
@sized(800)
@given(st.data())
def test_mutated_bytes_are_accepted_exactly_when_json_loads_accepts_them(data):
    _, body = data.draw(documents())
    mutated = bytearray(body)
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.integers(0, len(mutated)))
        how = data.draw(st.sampled_from(["replace", "insert", "delete"]))
        if how == "insert" or where == len(mutated):
            mutated[where:where] = bytes([data.draw(MUTATION_BYTES)])
        elif how == "replace":
            mutated[where] = data.draw(MUTATION_BYTES)
        else:
            del mutated[where]
    body = bytes(mutated)
    # Whole, the runs of flat values are skipped by regex; a byte at a time, every token is stepped through.
    ways = {"whole": [body], "bytes": [body[i : i + 1] for i in range(len(body))], "cut": data.draw(cuts(body))}
    expected = json_loads_accepts(body)

    for way, chunks in ways.items():
        try:
            scanner = scan(chunks)
        except JsonError:
            accepted = False
        else:
            accepted = True
        assert accepted == expected, (way, body)
        if accepted:
            parsed = json.loads(body)
            if isinstance(expected_pick(parsed), str):
                assert_picked(scanner, parsed)


@pytest.mark.property
@sized(2000)
@given(
    soup=st.text(alphabet='-+.eE0123456789"\\/ubfnrtalsAF{}[],: \t', max_size=10),
    context=st.sampled_from(["{}", "[{}]", '{{"a": {}}}', '{{"recording": {}}}', '[[1, "x"], {{"b": [{}]}}]']),
)
def test_a_soup_of_json_characters_is_judged_as_json_loads_judges_it(soup, context):
    # Short documents dense in number, literal, escape and bracket characters, where a mutation of a long one
    # rarely lands: every token's state machine and every run's regex meets its edge cases here.
    body = context.format(soup).encode()
    expected = json_loads_accepts(body)

    for chunks in ([body], [body[i : i + 1] for i in range(len(body))]):
        assert accepts(chunks) == expected, (len(chunks), body)


@pytest.mark.parametrize(
    ("alphabet", "longest", "template"),
    [
        ("-+.eE019", 5, "[{}]"),  # numbers
        ("-+.eE019", 4, '{{"recording": {}}}'),
        ('u0aF"\\/bnx', 4, '["\\{}]'),  # escapes
        ("truefalsn", 4, "[{}]"),  # literals
        ('{}[],:"1', 4, "[{}]"),  # brackets
    ],
)
def test_every_short_token_is_judged_as_json_loads_judges_it(alphabet, longest, template):
    # Exhaustive where random draws are thin: every string of up to `longest` of these characters, whole (the
    # runs' regexes) and a byte at a time (the state machines).
    for size in range(longest + 1):
        for letters in itertools.product(alphabet, repeat=size):
            body = template.format("".join(letters)).encode()
            expected = json_loads_accepts(body)
            for chunks in ([body], [body[i : i + 1] for i in range(len(body))]):
                assert accepts(chunks) == expected, (len(chunks), body)


@pytest.mark.parametrize(
    "body",
    [b"NaN", b"[Infinity]", b'{"a": -Infinity}', b"\xef\xbb\xbf{}", b'"\xed\xa0\x80"', b"", b" ", b"[1,]", b"01"],
)
def test_what_json_loads_takes_but_json_is_not_is_refused(body):
    with pytest.raises(JsonError):
        scan([body])


@pytest.mark.parametrize("body", [b'"\\ud800"', b'["\\udfff", "\\u0000"]', b'{"a": 1, "a": 2}', b"1" * 5000])
def test_what_json_allows_and_json_loads_reads_is_accepted(body):
    scan([body])


def test_the_picked_key_is_read_through_escapes_repeats_and_runs_of_flat_members():
    body = b'{"a": 1, "b": [1, {"recording": "nested"}], "rec\\u006frding": "first", "c": "x", "recording": "last"}'

    assert scan([body]).picked == "last"
    assert scan([bytes([byte]) for byte in body]).picked == "last"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ('{"a": 1}', "<an object>"),
        ("[]", "<an array>"),
        ("12", "<a number>"),
        ("null", "<null>"),
        ('"' + "k" * (MAX_PICKED_BYTES + 1) + '"', f"<a string of over {MAX_PICKED_BYTES} bytes>"),
    ],
)
def test_a_picked_value_that_is_not_a_short_string_is_described_not_kept(value, shown):
    assert repr(scan([b'{"recording": ' + value.encode() + b"}"]).picked) == shown


def test_nesting_is_bounded():
    scan([b"[" * MAX_DEPTH + b"]" * MAX_DEPTH])
    with pytest.raises(JsonError, match="nested deeper"):
        scan([b"[" * (MAX_DEPTH + 1)])


def verdict(chunks: list[bytes]) -> str:
    try:
        scan(chunks)
    except JsonError as err:
        return "nested deeper" if "nested deeper" in str(err) else str(err)
    return "accepted"


@pytest.mark.parametrize("inner", [b"[1]", b"[[1]]", b"[[[1]]]", b'{"k":[[1]]}'])
@pytest.mark.parametrize("outer", [MAX_DEPTH - 3, MAX_DEPTH - 2, MAX_DEPTH - 1, MAX_DEPTH])
def test_the_nesting_cap_holds_however_the_body_is_cut(outer, inner):
    """The runs skipped by regex count their levels too: a body is refused at the cap fed whole or a byte at a time."""
    body = b"[" * outer + inner + b"]" * outer
    depth = outer + inner.count(b"[") + inner.count(b"{")
    expected = "accepted" if depth <= MAX_DEPTH else "nested deeper"
    assert verdict([body]) == expected
    assert verdict([body[i : i + 1] for i in range(len(body))]) == expected
    assert verdict([body[: outer + 1], body[outer + 1 :]]) == expected


def test_a_long_string_costs_the_scanner_no_memory():
    # 20 MB of log with escapes all through it, in 64 KiB chunks made on the fly: the scanner's allocations
    # at their peak (the chunk's UTF-8 check included) stay far below one chunk's worth of the string.
    line = json.dumps("\tat com.acme.Shop.run(Shop.kt:42) \u00e9\U0001f600\n")[1:-1].encode()
    block = line * (65536 // len(line))
    scanner = JsonScanner("recording")
    tracemalloc.start()
    try:
        scanner.feed(b'{"recording": "mobile_recording", "log": "')
        for _ in range(20_000_000 // len(block)):
            scanner.feed(block)
        scanner.feed(b'"}')
        scanner.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert scanner.picked == "mobile_recording"
    assert scanner.bytes > 20_000_000 - len(block)
    assert peak < 300_000


def test_errors_name_the_offset_and_never_quote_the_body():
    secret = b"tok-S3cretValue"
    with pytest.raises(JsonError) as caught:
        scan([b'{"recording": "x", "echo": Bearer ' + secret + b"}"])

    assert str(caught.value) == "expected a value at byte 27"
