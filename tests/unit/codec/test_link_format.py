"""CoRE Link Format (RFC 6690) and its LwM2M registration reading (Core 1.1.1 §6.2.1, §5.3.1)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m.codec.link_format import (
    Link,
    RegisteredObjects,
    format_links,
    format_object_links,
    parse_links,
    parse_object_links,
)
from lwm2m.errors import CodecError
from lwm2m.path import Path

# ---------------------------------------------------------------------------------------- links


def test_rfc6690_example_parses_targets_and_parameters_in_order() -> None:
    # RFC 6690 §5 first example, as a server answers GET /.well-known/core.
    text = '</sensors/temp>;rt="temperature-c";if="sensor",</sensors/light>;rt="light-lux";if="sensor"'
    assert parse_links(text) == [
        Link("/sensors/temp", (("rt", "temperature-c"), ("if", "sensor"))),
        Link("/sensors/light", (("rt", "light-lux"), ("if", "sensor"))),
    ]


def test_quoted_values_may_hold_commas_semicolons_and_escaped_quotes() -> None:
    links = parse_links(r'</a>;title="x, y; z";note="say \"hi\"",</b>')
    assert links == [Link("/a", (("title", "x, y; z"), ("note", 'say "hi"'))), Link("/b")]


def test_parameters_without_value_and_whitespace_between_links() -> None:
    links = parse_links(" </3/0> ; obs ;pmin = 10 ,\r\n\t</3/0/1>\n")
    assert links == [Link("/3/0", (("obs", None), ("pmin", "10"))), Link("/3/0/1")]
    assert links[0].has("obs") and links[0].param("obs") is None
    assert links[0].param("PMIN") == "10" and not links[1].has("pmin")


def test_bytes_are_decoded_as_utf8() -> None:
    assert parse_links(b"</1/0>") == [Link("/1/0")]


@pytest.mark.parametrize("text", ["", "   ", "\r\n"])
def test_empty_document_has_no_links(text: str) -> None:
    assert parse_links(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "<3/0",
        "3/0",
        "</3/0>,",
        "</3/0>;",
        "</3/0>;=1",
        "</3/0>;pmin=",
        '</3/0>;rt="oma',
        '</3/0>;rt="oma\\',
        "</3/0> </3/1>",
        "</3/0>x",
        "</3 0>",
        "<</3>",
        ",</3/0>",
        "</3/0>;;pmin=1",
    ],
)
def test_malformed_link_format_raises_codec_error(text: str) -> None:
    with pytest.raises(CodecError):
        parse_links(text)


def test_invalid_utf8_raises_codec_error() -> None:
    with pytest.raises(CodecError):
        parse_links(b"</\xff>")


def test_formatter_quotes_when_needed_and_for_rt() -> None:
    links = [
        Link("/", (("rt", "oma.lwm2m"), ("ct", "11543"))),
        Link("/3", (("ver", "1.1"),)),
        Link("/x", (("title", 'a "b", c'), ("obs", None), ("empty", ""))),
    ]
    assert format_links(links) == (
        '</>;rt="oma.lwm2m";ct=11543,</3>;ver=1.1,</x>;title="a \\"b\\", c";obs;empty=""'
    )


@pytest.mark.parametrize(
    "link", [Link("/a>b"), Link("/a b"), Link("/a", (("", "1"),)), Link("/a", (("p;q", "1"),))]
)
def test_formatter_refuses_what_link_format_cannot_carry(link: Link) -> None:
    with pytest.raises(CodecError):
        format_links([link])


_TARGETS = st.text(
    st.characters(codec="ascii", min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='<>"'),
    max_size=20,
)
_NAMES = st.text(
    st.sampled_from("abcdefghijklmnopqrstuvwxyzABC0123456789-._!#$&+^`|~*"), min_size=1, max_size=8
)
_VALUES = st.none() | st.text(max_size=20)
_LINKS = st.lists(
    st.builds(Link, _TARGETS, st.lists(st.tuples(_NAMES, _VALUES), max_size=4).map(tuple)), max_size=6
)


@given(_LINKS)
def test_format_then_parse_round_trips(links: list[Link]) -> None:
    assert parse_links(format_links(links)) == links


@settings(max_examples=400)
@given(st.text(st.sampled_from('<>/;,="\\ \n03abrtct.x'), max_size=40) | st.text(max_size=40))
def test_random_text_parses_or_raises_codec_error(text: str) -> None:
    try:
        links = parse_links(text)
    except CodecError:
        return
    assert all(isinstance(link, Link) for link in links)


@settings(max_examples=200)
@given(st.binary(max_size=40))
def test_random_bytes_parse_or_raise_codec_error(payload: bytes) -> None:
    try:
        parse_links(payload)
        parse_object_links(payload)
    except CodecError:
        pass


@settings(max_examples=300)
@given(st.text(st.sampled_from('<>/;,="\\ 0123lwm2m;rt=ver.ct'), max_size=50))
def test_random_registration_text_reads_or_raises_codec_error(text: str) -> None:
    try:
        result = parse_object_links(text)
    except CodecError:
        return
    assert all(path.depth == 2 for path in result.instances)


# ---------------------------------------------------------------------------------------- LwM2M


def test_plain_registration_payload_lists_objects_and_instances() -> None:
    result = parse_object_links("</1/0>,</3/0>,</3/1>,</5>")
    assert result.root == "/"
    assert result.content_formats == ()
    assert result.objects == {1: None, 3: None, 5: None}
    assert result.instances == [Path(1, 0), Path(3, 0), Path(3, 1)]
    assert len(result.links) == 4


def test_root_link_gives_the_supported_content_format() -> None:
    # Core 1.1.1 §6.2.1 / 1.0.2 §5.3.1 register example with the root link.
    result = parse_object_links('</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>')
    assert result.root == "/"
    assert result.content_formats == (11543,)
    assert result.instances == [Path(1, 0), Path(3, 0)]
    assert result.objects == {1: None, 3: None}


def test_quoted_content_format_list_on_the_root_link() -> None:
    result = parse_object_links('</>;rt="oma.lwm2m";ct="60 110 112 11542 11543",</3/0>')
    assert result.content_formats == (60, 110, 112, 11542, 11543)


def test_link_to_the_root_without_rt_is_still_the_root_link() -> None:
    result = parse_object_links("</>;ct=11542,</1/0>")
    assert result.content_formats == (11542,)
    assert result.instances == [Path(1, 0)]


def test_alternate_root_path_prefixes_every_object_link() -> None:
    result = parse_object_links('</lwm2m>;rt="oma.lwm2m",</lwm2m/1/0>,</lwm2m/3/0>,</lwm2m/5>')
    assert result.root == "/lwm2m"
    assert result.instances == [Path(1, 0), Path(3, 0)]
    assert result.objects == {1: None, 3: None, 5: None}


def test_object_versions_come_from_ver_on_object_links() -> None:
    # Core 1.1.1 §6.2.1: objects other than version 1.0 carry `ver`.
    result = parse_object_links('</1>;ver=1.1,</1/0>,</3/0>,</3>;ver="1.2",\n</5>')
    assert result.objects == {1: "1.1", 3: "1.2", 5: None}
    assert result.instances == [Path(1, 0), Path(3, 0)]


def test_discover_answer_with_attributes_and_resource_links() -> None:
    result = parse_object_links("</3/0>;pmin=10,</3/0/1>,</3/0/7>;dim=2")
    assert result.instances == [Path(3, 0)]
    assert result.objects == {3: None}
    assert result.links[0].param("pmin") == "10"
    assert result.links[2] == Link("/3/0/7", (("dim", "2"),))


def test_empty_payload_registers_no_objects() -> None:
    assert parse_object_links(b"") == RegisteredObjects()


@pytest.mark.parametrize(
    "payload",
    [
        "<3/0",
        "</a/b>",
        "</3/x>",
        "</1/0/0/0/0>",
        "</3/70000>",
        '</lwm2m>;rt="oma.lwm2m",</1/0>',
        '</>;rt="oma.lwm2m";ct=json,</1/0>',
        '</>;rt="oma.lwm2m";ct=70000',
        '</1/0>;rt="oma',
    ],
)
def test_garbage_registration_payloads_raise_codec_error(payload: str) -> None:
    with pytest.raises(CodecError):
        parse_object_links(payload)


def test_format_object_links_for_a_registration() -> None:
    payload = format_object_links(
        [Path(3, 0), Path(1, 0), Path(3, 1)],
        objects_without_instances=[5],
        versions={1: "1.1"},
        content_format=11543,
    )
    assert payload == '</>;rt="oma.lwm2m";ct=11543,</1>;ver=1.1,</1/0>,</3/0>,</3/1>,</5>'


def test_format_object_links_under_an_alternate_root() -> None:
    payload = format_object_links([Path(1, 0)], root="/lwm2m/")
    assert payload == '</lwm2m>;rt="oma.lwm2m",</lwm2m/1/0>'
    assert parse_object_links(payload).instances == [Path(1, 0)]


def test_format_object_links_without_root_link_is_the_plain_list() -> None:
    assert format_object_links([Path(1, 0), Path(3, 0)]) == "</1/0>,</3/0>"


_INSTANCES = st.lists(
    st.builds(Path, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)), max_size=8, unique=True
)


@given(
    _INSTANCES,
    st.sets(st.integers(0, 0xFFFF), max_size=4),
    st.dictionaries(st.integers(0, 0xFFFF), st.sampled_from(["1.1", "1.2", "2.0"]), max_size=3),
    st.sampled_from(["/", "/lwm2m", "/a/b"]),
    st.none() | st.sampled_from([11542, 11543, 110]),
)
def test_format_object_links_then_parse_round_trips(
    instances: list[Path],
    bare: set[int],
    versions: dict[int, str],
    root: str,
    content_format: int | None,
) -> None:
    payload = format_object_links(instances, bare, versions, root, content_format)
    result = parse_object_links(payload)
    assert result.root == root
    assert result.content_formats == (() if content_format is None else (content_format,))
    assert sorted(result.instances) == sorted(instances)
    expected_objects: dict[int, str | None] = {p.ids[0]: None for p in instances} | dict.fromkeys(bare)
    expected_objects |= versions
    assert result.objects == expected_objects
