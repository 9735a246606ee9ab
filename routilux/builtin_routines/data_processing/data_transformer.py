"""DataTransformer: applies a chain of named or given functions to the input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._callables import CallableConfigRoutine

__all__ = ["DataTransformer"]


def _lowercase(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _uppercase(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _strip_whitespace(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _to_string(value: Any) -> Any:
    return str(value)


def _to_int(value: Any) -> Any:
    return int(value) if isinstance(value, (int, float, str)) else value


def _to_float(value: Any) -> Any:
    return float(value) if isinstance(value, (int, float, str)) else value


def _remove_none(value: Any) -> Any:
    return {k: v for k, v in value.items() if v is not None} if isinstance(value, dict) else value


#: The transformations every DataTransformer starts with, by name.
BUILTIN_TRANSFORMATIONS: dict[str, Callable[[Any], Any]] = {
    "lowercase": _lowercase,
    "uppercase": _uppercase,
    "strip_whitespace": _strip_whitespace,
    "to_string": _to_string,
    "to_int": _to_int,
    "to_float": _to_float,
    "remove_none": _remove_none,
}


def _with_builtins_named(data: dict[str, Any]) -> dict[str, Any]:
    config = data.get("_config")
    if not isinstance(config, dict) or not isinstance(config.get("transformation_map"), dict):
        return data
    mapping: dict[str, Any] = config["transformation_map"]
    fixed = dict(mapping)
    for name, entry in mapping.items():
        if (name in BUILTIN_TRANSFORMATIONS and isinstance(entry, dict) and entry.get("module") == __name__
                and entry.get("name") == "<lambda>"):
            fixed[name] = BUILTIN_TRANSFORMATIONS[name]
    return {**data, "_config": {**config, "transformation_map": fixed}}


class DataTransformer(CallableConfigRoutine):
    """Apply transformations to the input, one after the other, and emit the result.

    Slot ``input`` (``self.input_slot``) takes the value as ``data`` or the single other value
    it received, and optionally ``transformations`` (a non-empty list replaces the configured
    one for this input).

    Event ``output`` (``self.output_event``) carries ``transformed_data``,
    ``transformation_applied`` (the names of the transformations that ran, a function's
    ``__name__``) and ``errors`` (a list of messages, or None when there were none).

    A transformation is a name looked up in ``transformation_map`` or a function. A name that
    is not in the map (``"Unknown transformation: <name>"``), an entry that is neither
    (``"Invalid transformation: <entry>"``) or a transformation that raises
    (``"Error applying <entry>: <error>"``) adds an error message; the value is left as it was
    and the chain goes on.

    Built-in names: ``lowercase``, ``uppercase``, ``strip_whitespace`` (strings only; other
    values pass unchanged), ``to_string``, ``to_int``, ``to_float`` (ints, floats and strings;
    a string that is not a number is an error), ``remove_none`` (drops the None values of a
    dict). routilux 0.10's documentation also lists ``strip``: that name never existed and
    reports ``Unknown transformation: strip`` (use ``strip_whitespace``).

    Configuration:
        transformations (list, []): names and/or functions, applied in order.
        transformation_map (dict): name -> function; starts with the built-ins. Setting it
            with ``set_config`` replaces the built-ins too; :meth:`register_transformation`
            adds to it.
        chain_transformations (bool, True): accepted and kept, unused (as in 0.10).

    Functions in the configuration are serialized by reference (see ``CallableConfigRoutine``).
    Records nothing in the job beyond the ``output`` emit.
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(transformations=[], transformation_map=dict(BUILTIN_TRANSFORMATIONS),
                        chain_transformations=True)
        self.input_slot = self.define_slot("input", handler=self._handle_input)
        self.output_event = self.define_event("output", ["transformed_data", "transformation_applied", "errors"])

    def deserialize(self, data: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        """Restore a serialized DataTransformer, including one written by routilux 0.10.

        0.10 kept its built-in transformations as lambdas and wrote them as references that
        name no function (``<lambda>`` in this module); those are read as the built-ins here.
        """
        super().deserialize(_with_builtins_named(data), *args, **kwargs)

    def register_transformation(self, name: str, func: Callable[[Any], Any]) -> None:
        """Make ``func`` available under ``name`` (replacing a transformation of that name)."""
        mapping = self.get_config("transformation_map", {})
        mapping[name] = func
        self.set_config(transformation_map=mapping)

    def _handle_input(self, data: Any = None, transformations: list[Any] | None = None, **kwargs: Any) -> None:
        value = self._extract_input_data(data, **kwargs)
        chain = transformations or self.get_config("transformations", [])
        mapping = self.get_config("transformation_map", {})
        applied: list[str] = []
        errors: list[str] = []
        for step in chain:
            try:
                if isinstance(step, str):
                    if step not in mapping:
                        errors.append(f"Unknown transformation: {step}")
                        continue
                    value = mapping[step](value)
                    applied.append(step)
                elif callable(step):
                    value = step(value)
                    applied.append(getattr(step, "__name__", "custom"))
                else:
                    errors.append(f"Invalid transformation: {step}")
            except Exception as exc:
                errors.append(f"Error applying {step}: {exc}")
        self.emit("output", transformed_data=value, transformation_applied=applied, errors=errors or None)
