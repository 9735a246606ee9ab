"""TextRenderer: renders dicts and lists as tagged (XML-like) or markdown text."""

from __future__ import annotations

from typing import Any

from routilux.routine import Routine

__all__ = ["TextRenderer"]

CIRCULAR = "[Circular Reference]"


class TextRenderer(Routine):
    """Render a value as text: one line per dict key or list item, nested values indented.

    Slot ``input`` (``self.input_slot``) takes the value as ``data`` or the single value it
    receives (several keys: the received dict itself).

    Event ``output`` (``self.output_event``) carries ``rendered_text`` and ``original_type``
    (the input's type name, e.g. ``"dict"``).

    With ``tag_format="xml"`` a dict entry becomes ``<key>value</key>`` and list item ``i``
    becomes ``<item_i>value</item_i>``; any other format renders ``**key**: value`` and
    ``- value``. A nested container is rendered in place of ``value``, its lines indented by
    one more ``indent``. Other values are rendered with ``str()``; an empty dict or list renders
    as ``""``; a container that contains itself renders ``"[Circular Reference]"`` there.

    Configuration:
        tag_format (str, ``"xml"``): ``"xml"``, or anything else for markdown.
        indent (str, two spaces): the indentation added per nesting level.
        include_type_hints (bool, False): accepted and kept, unused (as in routilux 0.10).

    Records nothing in the job beyond the ``output`` emit.
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(tag_format="xml", indent="  ", include_type_hints=False)
        self.input_slot = self.define_slot("input", handler=self._handle_input)
        self.output_event = self.define_event("output", ["rendered_text", "original_type"])

    def _handle_input(self, data: Any = None, **kwargs: Any) -> None:
        value = self._extract_input_data(data, **kwargs)
        self.emit("output", rendered_text=self._render(value, 0, set()), original_type=type(value).__name__)

    def _render(self, value: Any, level: int, ancestors: set[int]) -> str:
        if not isinstance(value, (dict, list)):
            return str(value)
        if id(value) in ancestors:
            return CIRCULAR
        ancestors.add(id(value))
        try:
            indent = self.get_config("indent", "  ") * level
            xml = self.get_config("tag_format", "xml") == "xml"
            lines = []
            if isinstance(value, dict):
                for key, item in value.items():
                    inner = self._render(item, level + 1, ancestors)
                    lines.append(f"{indent}<{key}>{inner}</{key}>" if xml else f"{indent}**{key}**: {inner}")
            else:
                for i, item in enumerate(value):
                    inner = self._render(item, level + 1, ancestors)
                    lines.append(f"{indent}<item_{i}>{inner}</item_{i}>" if xml else f"{indent}- {inner}")
            return "\n".join(lines)
        finally:
            ancestors.discard(id(value))
