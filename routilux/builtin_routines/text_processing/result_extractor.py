"""ResultExtractor: pulls structured results out of text, code blocks and interpreter output."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any, Protocol

from routilux.routine import Routine

from ..errors import ExtractionError

__all__ = ["ExtractorProtocol", "ResultExtractor"]

logger = logging.getLogger(__name__)

#: What an extractor returns when it recognises its input: (result, format name, metadata).
Extraction = tuple[Any, str, dict[str, Any]]
ExtractorFunction = Callable[[Any, dict[str, Any]], "Extraction | None"]


class ExtractorProtocol(Protocol):
    """The shape of an extractor object: ``extract(data, config)`` returns an extraction or None."""

    def extract(self, data: Any, config: dict[str, Any]) -> Extraction | None:
        """Return ``(result, format, metadata)`` when ``data`` is recognised, else None."""
        ...


class ResultExtractor(Routine):
    """Extract a result from the input with the first (or every) extractor that recognises it.

    Slot ``input`` (``self.input_slot``) takes the value as ``data`` or the single value it
    received; an empty input (``{}``) is treated as ``""``.

    Event ``output`` (``self.output_event``) carries ``extracted_result``, ``format``,
    ``metadata`` (the extractor's, plus ``extractor`` and ``strategy``), ``confidence`` (0.0-1.0)
    and ``extraction_path`` (the names of the extractors whose results are reported).

    Extractors, tried in this order unless ``extractor_priority`` says otherwise:
    ``interpreter_output`` (a list of ``{"format", "content"}`` dicts and strings: the
    ``"output"`` contents and strings joined by newlines), ``json_code_block`` (the last
    parseable ```json block), ``json_string`` (text that is a JSON object or array),
    ``yaml_code_block`` and ``yaml_string`` (only when PyYAML is installed), ``xml_code_block``,
    ``code_block`` (the last block of the first language in ``code_block_languages`` that has
    one, ``json`` excluded), then ``dict_extractor`` and ``list_extractor`` (the value itself),
    then extractors added with :meth:`register_extractor`, in the order they were added.

    Confidence starts at 0.5: +0.2 for a dict or list result, +0.1 when the extraction method
    names a code block, +0.1 for the formats ``json`` and ``yaml``, -0.3 for an empty result;
    clamped to 0.0-1.0.

    Configuration:
        strategy (str, ``"auto"``): ``"auto"``, ``"first_match"`` and ``"priority"`` report the
            first extraction; ``"all"`` reports every one (``format="multi"``, a list of
            results, the best confidence); any other value reports the most confident one.
        extractor_priority (list, []): extractor names to try first, in this order; the others
            keep their relative order after them.
        extract_json_blocks, extract_code_blocks (bool, True); extract_yaml_blocks,
            extract_xml_blocks (bool, False): switch those extractors on or off.
        code_block_languages (list, ``["json", "python", "output", "yaml", "xml"]``).
        format_interpreter_output (bool, True), parse_json_strings (bool, True),
            parse_yaml_strings (bool, False): switch those extractors on or off.
        detect_nested_structures (bool, True): accepted and kept, unused (as in 0.10).
        continue_on_error (bool, True): after an extractor raises, try the next one (else stop).
        return_original_on_failure (bool, True): when nothing is extracted, emit the input
            itself with confidence 0.0, ``format`` its lower-case type name and the errors in
            ``metadata``; when False the handler raises :class:`ExtractionError` instead (the
            flow records it as the routine's ``error``).
        log_errors (bool, True): log each extractor error as a warning with its traceback.

    Records nothing in the job beyond the ``output`` emit.
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(
            strategy="auto",
            extractor_priority=[],
            extract_json_blocks=True,
            extract_code_blocks=True,
            extract_yaml_blocks=False,
            extract_xml_blocks=False,
            code_block_languages=["json", "python", "output", "yaml", "xml"],
            format_interpreter_output=True,
            parse_json_strings=True,
            parse_yaml_strings=False,
            detect_nested_structures=True,
            continue_on_error=True,
            return_original_on_failure=True,
            log_errors=True,
        )
        self._extractors: dict[str, ExtractorFunction] = dict(_BUILTIN_EXTRACTORS)
        self.input_slot = self.define_slot("input", handler=self._handle_input)
        self.output_event = self.define_event(
            "output", ["extracted_result", "format", "metadata", "confidence", "extraction_path"]
        )

    def register_extractor(self, name: str, extractor: ExtractorFunction) -> None:
        """Add (or replace) an extractor ``extractor(data, config) -> (result, format, metadata) | None``.

        Added extractors are tried after the built-in ones unless ``extractor_priority``
        names them. They live on this instance only: a deserialized flow does not have them.
        """
        self._extractors[name] = extractor
        logger.info("Registered custom extractor: %s", name)

    def _handle_input(self, data: Any = None, **kwargs: Any) -> None:
        value = self._extract_input_data(data, **kwargs)
        if value == {}:
            value = ""
        self.emit("output", **self._extract(value))

    def _extract(self, data: Any) -> dict[str, Any]:
        strategy = self.get_config("strategy", "auto")
        config = self._config
        found: list[dict[str, Any]] = []
        errors: list[dict[str, str]] = []
        for name, extractor in self._ordered_extractors():
            try:
                extraction = extractor(data, config)
                if extraction is None:
                    continue
                result, format_name, metadata = extraction
                metadata["extractor"] = name
                metadata["strategy"] = strategy
                report = {
                    "extracted_result": result,
                    "format": format_name,
                    "metadata": metadata,
                    "confidence": _confidence(result, format_name, metadata),
                    "extraction_path": [name],
                }
            except Exception as exc:
                message = f"Extractor '{name}' failed: {exc}"
                errors.append({"extractor": name, "error": message})
                if self.get_config("log_errors", True):
                    logger.warning(message, exc_info=True)
                if not self.get_config("continue_on_error", True):
                    break
                continue
            if strategy in ("first_match", "auto", "priority"):
                return report
            found.append(report)
        if found and strategy == "all":
            return {
                "extracted_result": [r["extracted_result"] for r in found],
                "format": "multi",
                "metadata": {"extractions": found, "count": len(found), "errors": errors},
                "confidence": max(r["confidence"] for r in found),
                "extraction_path": [r["extraction_path"][0] for r in found],
            }
        if found:
            return max(found, key=lambda r: r["confidence"])
        if not self.get_config("return_original_on_failure", True):
            raise ExtractionError(f"All extractors failed. Errors: {errors}", errors)
        return {
            "extracted_result": data,
            "format": type(data).__name__.lower(),
            "metadata": {"extraction_method": "none", "errors": errors, "original_type": type(data).__name__},
            "confidence": 0.0,
            "extraction_path": [],
        }

    def _ordered_extractors(self) -> list[tuple[str, ExtractorFunction]]:
        priority = self.get_config("extractor_priority", [])
        extractors = list(self._extractors.items())
        if priority:
            rank = {name: i for i, name in enumerate(priority)}
            return sorted(extractors, key=lambda item: rank.get(item[0], 999))
        return sorted(extractors, key=lambda item: _DEFAULT_RANK.get(item[0], _CUSTOM_RANK))


def _confidence(result: Any, format_name: str, metadata: dict[str, Any]) -> float:
    # The additions happen one by one, in this order, so the floats come out exactly as 0.10's.
    confidence = 0.5
    if isinstance(result, (dict, list)):
        confidence += 0.2
    if "code_block" in metadata.get("extraction_method", ""):
        confidence += 0.1
    if format_name in ("json", "yaml"):
        confidence += 0.1
    if not result or (isinstance(result, str) and not result.strip()):
        confidence -= 0.3
    return max(0.0, min(1.0, confidence))


# -- built-in extractors ------------------------------------------------------------------------
def code_blocks(text: str, language: str) -> list[str]:
    """Return the contents of every fenced block of ``language`` in ``text``, in order.

    A block opens with three backticks and the language (case-insensitive, optionally in
    braces: ```{python}), then optional whitespace and a newline; it ends at the next three
    backticks. Plain blocks come first, then the braced ones.
    """
    name = re.escape(language)
    plain = re.findall(rf"```{name}\s*\n(.*?)```", text, re.DOTALL | re.IGNORECASE)
    braced = re.findall(rf"```\{{{name}\}}\s*\n(.*?)```", text, re.DOTALL | re.IGNORECASE)
    return plain + braced


def _interpreter_output(data: Any, config: dict[str, Any]) -> Extraction | None:
    if not isinstance(data, list) or not config.get("format_interpreter_output", True):
        return None
    structured = False
    lines: list[str] = []
    for item in data:
        if isinstance(item, dict):
            if "format" in item or "content" in item:
                structured = True
                content = item.get("content")
                if item.get("format") == "output" and content and str(content).strip():
                    lines.append(str(content))
        elif isinstance(item, str) and item.strip():
            lines.append(item)
    if not (structured and lines):
        return None
    meta = {"extraction_method": "interpreter_output", "output_count": len(lines), "line_count": len(lines)}
    return "\n".join(lines), "interpreter_output", meta


def _json_code_block(data: Any, config: dict[str, Any]) -> Extraction | None:
    if not isinstance(data, str) or not config.get("extract_json_blocks", True):
        return None
    blocks = code_blocks(data, "json")
    for block in reversed(blocks):
        try:
            parsed = json.loads(block.strip())
        except json.JSONDecodeError:
            continue
        meta = {"extraction_method": "json_code_block", "block_count": len(blocks), "block_index": blocks.index(block)}
        return parsed, "json", meta
    return None


def _json_string(data: Any, config: dict[str, Any]) -> Extraction | None:
    if not isinstance(data, str) or not config.get("parse_json_strings", True):
        return None
    text = data.strip()
    if text[:1] not in ("{", "[") or len(text) <= 2:
        return None
    try:
        return json.loads(text), "json", {"extraction_method": "json_string"}
    except json.JSONDecodeError:
        return None


def _code_block(data: Any, config: dict[str, Any]) -> Extraction | None:
    if not isinstance(data, str) or not config.get("extract_code_blocks", True):
        return None
    for language in config.get("code_block_languages", ["json", "python", "output"]):
        if language == "json":  # json_code_block parses those
            continue
        blocks = code_blocks(data, language)
        if blocks:
            return blocks[-1], language, {"extraction_method": f"{language}_code_block", "block_count": len(blocks)}
    return None


def _yaml_code_block(data: Any, config: dict[str, Any]) -> Extraction | None:
    if not isinstance(data, str) or not config.get("extract_yaml_blocks", False) or _yaml is None:
        return None
    blocks = code_blocks(data, "yaml") or code_blocks(data, "yml")
    for block in reversed(blocks):
        try:
            parsed = _yaml.safe_load(block.strip())
        except Exception:
            continue
        return parsed, "yaml", {"extraction_method": "yaml_code_block", "block_count": len(blocks)}
    return None


def _yaml_string(data: Any, config: dict[str, Any]) -> Extraction | None:
    if not isinstance(data, str) or not config.get("parse_yaml_strings", False) or _yaml is None:
        return None
    try:
        parsed = _yaml.safe_load(data.strip())
    except Exception:
        return None
    return None if parsed is None else (parsed, "yaml", {"extraction_method": "yaml_string"})


def _xml_code_block(data: Any, config: dict[str, Any]) -> Extraction | None:
    if not isinstance(data, str) or not config.get("extract_xml_blocks", False):
        return None
    blocks = code_blocks(data, "xml")
    if not blocks:
        return None
    return blocks[-1], "xml", {"extraction_method": "xml_code_block", "block_count": len(blocks)}


def _the_dict(data: Any, config: dict[str, Any]) -> Extraction | None:
    if isinstance(data, dict):
        return data, "dict", {"extraction_method": "direct", "key_count": len(data)}
    return None


def _the_list(data: Any, config: dict[str, Any]) -> Extraction | None:
    if isinstance(data, list):
        return data, "list", {"extraction_method": "direct", "item_count": len(data)}
    return None


try:  # PyYAML is optional, as in routilux 0.10: without it the two YAML extractors do not exist.
    import yaml

    _yaml: Any = yaml
except ImportError:  # pragma: no cover - depends on the environment
    _yaml = None

_BUILTIN_EXTRACTORS: dict[str, ExtractorFunction] = {
    "interpreter_output": _interpreter_output,
    "json_code_block": _json_code_block,
    "json_string": _json_string,
    "code_block": _code_block,
    **({"yaml_code_block": _yaml_code_block, "yaml_string": _yaml_string} if _yaml is not None else {}),
    "xml_code_block": _xml_code_block,
    "dict_extractor": _the_dict,
    "list_extractor": _the_list,
}

# Default order: specialised extractors first, then the type-based fallbacks; extractors added
# by users come last of all (0.10 meant "in the middle", but ranked them after the fallbacks,
# so a custom extractor never sees a dict or a list; kept for identical results).
_DEFAULT_RANK = {
    name: rank for rank, name in enumerate(
        ["interpreter_output", "json_code_block", "json_string", "yaml_code_block", "yaml_string",
         "xml_code_block", "code_block"]
    )
} | {"dict_extractor": 50, "list_extractor": 51}
_CUSTOM_RANK = 150
