"""TextRenderer: XML and markdown rendering, nesting, cycles, and a real flow."""

from __future__ import annotations

import pytest
from builtin_support import assert_replays, history, run_flow, send

from routilux.builtin_routines import TextRenderer
from routilux.builtin_routines.text_processing.text_renderer import TextRenderer as FromModule

PERSON = {"name": "Ann", "langs": ["py", "go"], "home": {"city": "Oslo"}}


def render(emits, payload, **config):
    renderer = TextRenderer()
    renderer.set_config(**config)
    out = emits(renderer)
    send(renderer, payload)
    assert [name for name, _ in out] == ["output"]
    return out[0][1]


def test_defaults_slots_and_events():
    """0.10's defaults (include_type_hints is kept but unused), slot ``input``, event ``output``."""
    renderer = TextRenderer()
    assert FromModule is TextRenderer
    assert renderer.config() == {"tag_format": "xml", "indent": "  ", "include_type_hints": False}
    assert renderer.input_slot is renderer.get_slot("input")
    assert renderer.output_event.output_params == ["rendered_text", "original_type"]


def test_xml_nesting_and_lists(emits):
    """Dict keys become tags, list items item_<i>; nested lines are indented one level more."""
    out = render(emits, {"data": PERSON})
    assert out == {
        "rendered_text": "<name>Ann</name>\n"
                         "<langs>  <item_0>py</item_0>\n  <item_1>go</item_1></langs>\n"
                         "<home>  <city>Oslo</city></home>",
        "original_type": "dict",
    }


def test_markdown_with_a_custom_indent(emits):
    """Any other tag_format renders **key**: value and - item, with the configured indent."""
    out = render(emits, {"data": PERSON}, tag_format="markdown", indent="\t")
    assert out["rendered_text"] == "**name**: Ann\n**langs**: \t- py\n\t- go\n**home**: \t**city**: Oslo"
    assert render(emits, {"data": [1]}, tag_format="html")["rendered_text"] == "- 1"


@pytest.mark.parametrize(
    ("value", "text", "type_name"),
    [("plain", "plain", "str"), (3.5, "3.5", "float"), (None, "", "dict"), ({}, "", "dict"),
     ([], "", "list"), ((1, 2), "(1, 2)", "tuple"), ([None, True], "<item_0>None</item_0>\n<item_1>True</item_1>", "list")],
)
def test_values_empty_containers_and_other_types(emits, value, text, type_name):
    """Non-containers render with str(); empty containers render empty; the type name is reported.

    ``{"data": None}`` counts as no input at all: an empty dict is rendered (0.10's input rule).
    """
    assert render(emits, {"data": value}) == {"rendered_text": text, "original_type": type_name}


def test_several_keys_render_the_received_dict(emits):
    """Without a ``data`` key and with several keys, the whole input is rendered."""
    assert render(emits, {"a": 1, "b": 2})["rendered_text"] == "<a>1</a>\n<b>2</b>"


def test_a_cycle_renders_a_marker_but_a_shared_value_renders_twice(emits):
    """A container inside itself is cut with [Circular Reference]; a value seen twice is not a cycle."""
    loop: dict = {"a": 1}
    loop["self"] = loop
    assert render(emits, {"data": loop})["rendered_text"] == "<a>1</a>\n<self>[Circular Reference]</self>"
    shared = [7]
    out = render(emits, {"data": {"x": shared, "y": shared}})["rendered_text"]
    assert out == "<x>  <item_0>7</item_0></x>\n<y>  <item_0>7</item_0></y>"


def test_in_a_flow_the_emits_are_recorded_and_replay():
    """Through a real flow: the sink gets the text, the history holds it, the events replay."""
    _, job, got = run_flow(TextRenderer(), [{"data": PERSON}, {"data": [1, 2]}])
    assert job.status == "completed"
    assert [r["original_type"] for r in got["output"]] == ["dict", "list"]
    assert got["output"][1]["rendered_text"] == "<item_0>1</item_0>\n<item_1>2</item_1>"
    assert history(job) == [("output", r) for r in got["output"]]
    assert_replays(job)
