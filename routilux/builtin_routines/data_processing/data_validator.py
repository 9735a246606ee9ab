"""DataValidator: checks the input against per-field rules and routes it to ``valid`` or ``invalid``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._callables import CallableConfigRoutine

__all__ = ["DataValidator"]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float))


#: The validators every DataValidator knows by name.
BUILTIN_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "not_empty": lambda v: v is not None and v != "",
    "is_string": lambda v: isinstance(v, str),
    "is_int": lambda v: isinstance(v, int),
    "is_float": lambda v: isinstance(v, float),
    "is_number": _is_number,
    "is_dict": lambda v: isinstance(v, dict),
    "is_list": lambda v: isinstance(v, list),
    "is_positive": lambda v: _is_number(v) and v > 0,
    "is_non_negative": lambda v: _is_number(v) and v >= 0,
}


class DataValidator(CallableConfigRoutine):
    """Validate the input; emit ``valid`` with it, or ``invalid`` with the list of problems.

    Slot ``input`` (``self.input_slot``) takes the value as ``data`` or the single other value
    it received (several keys: the received dict itself), and optionally ``rules`` (a
    non-empty dict replaces the configured rules for this input).

    Events: ``valid`` (``self.valid_event``) carries ``validated_data``; ``invalid``
    (``self.invalid_event``) carries ``errors`` (messages) and ``data`` (the input).

    What is checked depends on the input:

    * a dict: each of ``required_fields`` must be a key (``"Required field 'f' is missing"``);
      then each key is checked by its rule, and a key without a rule is an error
      (``"Unexpected field 'f'"``) when ``allow_extra_fields`` is False;
    * a list or tuple: each item is checked by the rule ``"items"`` (as ``items[i]``);
    * anything else: the value is checked by the rule ``"value"``.

    A rule is the name of a validator (built-in or registered with :meth:`register_validator`)
    or a function of the value returning a bool, a ``(bool, message)`` pair (the message is
    the error) or anything truthy. Messages: ``"Field 'f' failed validation"``,
    ``"Unknown validator: <name>"``, ``"Invalid validator for field 'f'"`` (neither a name
    nor a function) and ``"Validation error for field 'f': <error>"`` (the function raised).

    Built-in validators: ``not_empty`` (not None and not ""), ``is_string``, ``is_int``,
    ``is_float``, ``is_number``, ``is_dict``, ``is_list``, ``is_positive``,
    ``is_non_negative`` (the last two: numbers only; note that True is an int).

    Configuration:
        rules (dict, {}): field -> rule (plus ``"items"``/``"value"`` as above).
        required_fields (list, []).
        allow_extra_fields (bool, True).
        strict_mode (bool, False): stop checking the required fields at the first missing
            one, and the fields at the first failing one (the two checks still both run).
            routilux 0.10's documentation calls it "reject extra fields"; that is
            ``allow_extra_fields=False``.

    Functions in the configuration are serialized by reference (see ``CallableConfigRoutine``).
    Records nothing in the job beyond the ``valid``/``invalid`` emit.
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(rules={}, strict_mode=False, required_fields=[], allow_extra_fields=True)
        # Not configuration (0.10 kept them out of _config too): they are code, not settings.
        self._builtin_validators: dict[str, Callable[[Any], Any]] = dict(BUILTIN_VALIDATORS)
        self.input_slot = self.define_slot("input", handler=self._handle_input)
        self.valid_event = self.define_event("valid", ["validated_data"])
        self.invalid_event = self.define_event("invalid", ["errors", "data"])

    def register_validator(self, name: str, func: Callable[[Any], Any]) -> None:
        """Make ``func`` usable as a rule under ``name`` (on this instance only)."""
        self._builtin_validators[name] = func

    def _handle_input(self, data: Any = None, rules: dict[str, Any] | None = None, **kwargs: Any) -> None:
        value = self._extract_input_data(data, **kwargs)
        errors = self._problems(value, rules or self.get_config("rules", {}))
        if errors:
            self.emit("invalid", errors=errors, data=value)
        else:
            self.emit("valid", validated_data=value)

    def _problems(self, value: Any, rules: dict[str, Any]) -> list[Any]:
        strict = self.get_config("strict_mode", False)
        errors: list[Any] = []
        if isinstance(value, dict):
            for field in self.get_config("required_fields", []):
                if field not in value:
                    errors.append(f"Required field '{field}' is missing")
                    if strict:
                        break
            extra_allowed = self.get_config("allow_extra_fields", True)
            for field, item in value.items():
                if field in rules:
                    ok, message = self._check(field, item, rules[field])
                elif not extra_allowed:
                    ok, message = False, f"Unexpected field '{field}'"
                else:
                    continue
                if not ok:
                    errors.append(message)
                    if strict:
                        break
        elif isinstance(value, (list, tuple)):
            if "items" in rules:
                for i, item in enumerate(value):
                    ok, message = self._check(f"items[{i}]", item, rules["items"])
                    if not ok:
                        errors.append(message)
                        if strict:
                            break
        elif "value" in rules:
            ok, message = self._check("value", value, rules["value"])
            if not ok:
                errors.append(message)
        return errors

    def _check(self, field: str, value: Any, rule: Any) -> tuple[bool, Any]:
        """Return ``(True, None)`` when ``value`` passes ``rule``, else ``(False, message)``.

        The message is the rule's own when it returned ``(False, message)``, even None.
        """
        try:
            if isinstance(rule, str):
                if rule not in self._builtin_validators:
                    return False, f"Unknown validator: {rule}"
                passed = self._builtin_validators[rule](value)
            elif callable(rule):
                result = rule(value)
                if isinstance(result, tuple) and len(result) == 2:
                    ok, message = result
                    return (True, None) if ok else (False, message)
                passed = result
            else:
                return False, f"Invalid validator for field '{field}'"
            return (True, None) if passed else (False, f"Field '{field}' failed validation")
        except Exception as exc:
            return False, f"Validation error for field '{field}': {exc}"
