"""ResultExtractor: every extractor, strategies, ordering, switches, errors, and a real flow."""

from __future__ import annotations

import importlib.util
import logging

import pytest
from builtin_support import assert_replays, history, run_flow, send

from routilux.builtin_routines import ResultExtractor
from routilux.builtin_routines.errors import ExtractionError
from routilux.builtin_routines.text_processing import result_extractor as module

F = "```"
LLM_ANSWER = f'Sure:\n{F}json\n{{"a": 1}}\n{F}\nthen\n{F}json\n[1, 2]\n{F}\n{F}python\nprint(1)\n{F}\n'
DEFAULT_ORDER = ["interpreter_output", "json_code_block", "json_string", "xml_code_block", "code_block",
                 "dict_extractor", "list_extractor"]


def extract(emits, data, **config):
    extractor = ResultExtractor()
    extractor.set_config(**config)
    out = emits(extractor)
    send(extractor, {"data": data})
    assert [name for name, _ in out] == ["output"]
    return out[0][1]


def custom(data, config):
    """A user extractor: 'C:<text>' -> text; raises on 'boom'."""
    if data == "boom":
        raise RuntimeError("custom exploded")
    if isinstance(data, str) and data.startswith("C:"):
        return data[2:], "custom", {"extraction_method": "prefix"}
    return None


def test_defaults_slots_and_events():
    """0.10's configuration keys and defaults, slot ``input`` and event ``output``."""
    extractor = ResultExtractor()
    assert extractor.config() == {
        "strategy": "auto", "extractor_priority": [], "extract_json_blocks": True, "extract_code_blocks": True,
        "extract_yaml_blocks": False, "extract_xml_blocks": False,
        "code_block_languages": ["json", "python", "output", "yaml", "xml"], "format_interpreter_output": True,
        "parse_json_strings": True, "parse_yaml_strings": False, "detect_nested_structures": True,
        "continue_on_error": True, "return_original_on_failure": True, "log_errors": True,
    }
    assert extractor.output_event.output_params == [
        "extracted_result", "format", "metadata", "confidence", "extraction_path"]
    names = [name for name, _ in extractor._ordered_extractors()]
    with_yaml = importlib.util.find_spec("yaml") is not None
    expected = DEFAULT_ORDER[:3] + ["yaml_code_block", "yaml_string"] * with_yaml + DEFAULT_ORDER[3:]
    assert names == expected  # the YAML extractors exist only when PyYAML is installed


def test_json_code_block_takes_the_last_parseable_block(emits):
    """The last ```json block that parses wins; its index and the block count are reported."""
    out = extract(emits, LLM_ANSWER)
    assert out == {
        "extracted_result": [1, 2], "format": "json",
        "metadata": {"extraction_method": "json_code_block", "block_count": 2, "block_index": 1,
                     "extractor": "json_code_block", "strategy": "auto"},
        "confidence": 0.5 + 0.2 + 0.1 + 0.1, "extraction_path": ["json_code_block"],
    }
    broken_last = f"{F}json\n{{\"ok\": true}}\n{F}\n{F}json\nnot json\n{F}"
    assert extract(emits, broken_last)["extracted_result"] == {"ok": True}


def test_code_block_fences_are_case_insensitive_and_may_use_braces(emits):
    """```JSON and ```{python} open blocks too; braced blocks come after plain ones."""
    assert extract(emits, f"{F}JSON  \n{{\"up\": 1}}\n{F}")["extracted_result"] == {"up": 1}
    both = f"{F}{{python}}\nbraced\n{F}\n{F}python\nplain\n{F}"
    assert extract(emits, both)["extracted_result"] == "braced\n"


def test_json_strings(emits):
    """A string that is a JSON object or array is parsed; '{}' and '[]' are too short to count."""
    assert extract(emits, '  {"k": [1, null]} ')["extracted_result"] == {"k": [1, None]}
    assert extract(emits, "[3]")["format"] == "json"
    for text in ("{}", "[]", "not json {", "{broken"):
        out = extract(emits, text)
        assert out["format"] == "str" and out["confidence"] == 0.0


def test_code_blocks_of_other_languages(emits):
    """The first configured language with a block gives its last block, raw; json is skipped."""
    text = f"{F}output\nfirst\n{F}\n{F}output\nresult 42\n{F}\n{F}python\nx = 1\n{F}"
    out = extract(emits, text)
    assert out["extracted_result"] == "x = 1\n" and out["format"] == "python"  # python is listed first
    assert out["metadata"]["extraction_method"] == "python_code_block" and out["confidence"] == 0.5 + 0.1
    out = extract(emits, text, code_block_languages=["output"])
    assert out["extracted_result"] == "result 42\n" and out["metadata"]["block_count"] == 2


def test_xml_blocks_need_their_switch(emits):
    """extract_xml_blocks turns the xml extractor on; otherwise code_block reports the block."""
    text = f"{F}xml\n<r/>\n{F}"
    assert extract(emits, text)["extraction_path"] == ["code_block"]
    out = extract(emits, text, extract_xml_blocks=True)
    assert out["extraction_path"] == ["xml_code_block"] and out["extracted_result"] == "<r/>\n"


def test_interpreter_output(emits):
    """A list of {format, content} dicts: the 'output' contents and plain strings, joined."""
    data = [{"format": "output", "content": "hello"}, {"format": "code", "content": "x=1"}, "  ", "tail",
            {"content": ""}]
    out = extract(emits, data)
    assert out["extracted_result"] == "hello\ntail" and out["format"] == "interpreter_output"
    assert out["metadata"]["output_count"] == 2 and out["metadata"]["line_count"] == 2
    # Without the dict structure it is just a list.
    assert extract(emits, ["just", "strings"])["format"] == "list"
    assert extract(emits, data, format_interpreter_output=False)["format"] == "list"


def test_dicts_lists_and_fallbacks(emits):
    """Dicts and lists are returned as they are; anything else falls back to the input itself."""
    assert extract(emits, {"k": "v"})["metadata"]["key_count"] == 1
    assert extract(emits, [1, 2, 3])["metadata"]["item_count"] == 3
    assert extract(emits, [])["confidence"] == 0.5 + 0.2 - 0.3
    assert extract(emits, 7) == {
        "extracted_result": 7, "format": "int",
        "metadata": {"extraction_method": "none", "errors": [], "original_type": "int"},
        "confidence": 0.0, "extraction_path": [],
    }


def test_an_empty_input_is_an_empty_string(emits):
    """No data at all (or {}) is treated as ''."""
    extractor = ResultExtractor()
    out = emits(extractor)
    send(extractor, {})
    assert out[0][1]["extracted_result"] == "" and out[0][1]["format"] == "str"


def test_switching_extractors_off(emits):
    """Each switch turns its extractor off: the input falls through to the next one."""
    off = {"extract_json_blocks": False, "parse_json_strings": False}
    assert extract(emits, LLM_ANSWER, **off)["format"] == "python"
    off["extract_code_blocks"] = False
    assert extract(emits, LLM_ANSWER, **off)["format"] == "str"


def test_strategy_all_reports_every_extraction(emits):
    """'all' returns every result, format 'multi', the best confidence and every extractor name."""
    out = extract(emits, LLM_ANSWER, strategy="all")
    assert out["extracted_result"] == [[1, 2], "print(1)\n"]
    assert out["format"] == "multi" and out["extraction_path"] == ["json_code_block", "code_block"]
    assert out["metadata"]["count"] == 2 and out["metadata"]["errors"] == []
    assert out["confidence"] == max(e["confidence"] for e in out["metadata"]["extractions"])


def test_an_unknown_strategy_reports_the_most_confident(emits):
    """Any other strategy collects every extraction and reports the most confident one."""
    out = extract(emits, LLM_ANSWER, strategy="best")
    assert out["extraction_path"] == ["json_code_block"] and out["metadata"]["strategy"] == "best"


@pytest.mark.parametrize("strategy", ["auto", "first_match", "priority"])
def test_first_match_strategies(emits, strategy):
    """auto, first_match and priority all stop at the first extraction."""
    assert extract(emits, LLM_ANSWER, strategy=strategy)["extraction_path"] == ["json_code_block"]


def test_extractor_priority_reorders(emits):
    """Named extractors go first, in the given order; the others keep their order after them."""
    extractor = ResultExtractor()
    extractor.set_config(extractor_priority=["list_extractor", "code_block"])
    names = [name for name, _ in extractor._ordered_extractors()]
    assert names[:2] == ["list_extractor", "code_block"]
    assert extract(emits, LLM_ANSWER, extractor_priority=["code_block"])["format"] == "python"


def test_custom_extractors_run_after_the_built_ins(emits):
    """A registered extractor is tried last unless extractor_priority names it."""
    extractor = ResultExtractor()
    extractor.register_extractor("custom", custom)
    out = emits(extractor)
    send(extractor, {"data": "C:hello"})
    assert out[-1][1]["extracted_result"] == "hello" and out[-1][1]["metadata"]["extractor"] == "custom"
    send(extractor, {"data": {"C": 1}})  # the dict extractor answers first: custom never sees dicts
    assert out[-1][1]["extraction_path"] == ["dict_extractor"]


def test_extractor_errors_are_reported_and_logged(emits, caplog):
    """An extractor that raises is skipped, named in the errors, and logged when log_errors is on."""
    extractor = ResultExtractor()
    extractor.register_extractor("custom", custom)
    extractor.set_config(extractor_priority=["custom"])
    out = emits(extractor)
    with caplog.at_level(logging.WARNING, logger=module.__name__):
        send(extractor, {"data": "boom"})
    errors = out[-1][1]["metadata"]["errors"]
    assert errors == [{"extractor": "custom", "error": "Extractor 'custom' failed: custom exploded"}]
    assert "Extractor 'custom' failed: custom exploded" in caplog.text
    caplog.clear()
    extractor.set_config(log_errors=False)
    with caplog.at_level(logging.WARNING, logger=module.__name__):
        send(extractor, {"data": "boom"})
    assert caplog.text == ""


def test_continue_on_error_off_stops_at_the_first_error(emits):
    """With continue_on_error False, the first failing extractor ends the search."""
    out = extract(emits, "boom", log_errors=False)  # no custom extractor: plain fallback
    assert out["format"] == "str"
    extractor = ResultExtractor()
    extractor.register_extractor("custom", custom)
    extractor.set_config(extractor_priority=["custom"], continue_on_error=False, log_errors=False)
    got = emits(extractor)
    send(extractor, {"data": "boom"})
    assert got[-1][1]["extraction_path"] == [] and len(got[-1][1]["metadata"]["errors"]) == 1
    send(extractor, {"data": [1]})  # no error: the other extractors still run
    assert got[-1][1]["format"] == "list"


def test_no_fallback_raises_extraction_error():
    """return_original_on_failure=False: nothing extracted raises ExtractionError (a ValueError)."""
    extractor = ResultExtractor()
    extractor.set_config(return_original_on_failure=False)
    with pytest.raises(ExtractionError, match=r"All extractors failed\. Errors: \[\]") as caught:
        send(extractor, {"data": 7})
    assert isinstance(caught.value, ValueError) and caught.value.errors == []


def test_confidence_is_clamped_between_zero_and_one():
    """Confidence adds up per rule and stays within [0, 1]."""
    assert module._confidence({"a": 1}, "json", {"extraction_method": "json_code_block"}) == 0.5 + 0.2 + 0.1 + 0.1
    assert module._confidence("", "text", {}) == 0.5 - 0.3
    assert module._confidence({}, "yaml", {}) == 0.5 + 0.2 + 0.1 - 0.3


@pytest.mark.skipif(importlib.util.find_spec("yaml") is None, reason="PyYAML is an optional extra")
def test_yaml_blocks_when_pyyaml_is_installed(emits):
    """With PyYAML, yaml blocks and strings parse when switched on."""
    out = extract(emits, f"{F}yaml\na: 1\n{F}", extract_yaml_blocks=True)
    assert out["extracted_result"] == {"a": 1} and out["format"] == "yaml"


def test_in_a_flow_the_emits_are_recorded_and_replay():
    """Through a real flow: results reach the sink and the history; a failure is recorded; replay."""
    extractor = ResultExtractor()
    extractor.set_config(return_original_on_failure=False)
    _, job, got = run_flow(extractor, [{"data": LLM_ANSWER}, {"data": 7}, {"data": '{"x": 2}'}])
    assert job.status == "completed"
    assert [r["extracted_result"] for r in got["output"]] == [[1, 2], {"x": 2}]
    records = history(job)
    assert [name for name, _ in records] == ["output", "error", "output"]
    assert records[1][1]["error_type"] == "ExtractionError"
    assert_replays(job)
