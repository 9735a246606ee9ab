"""The builtin routines are where routilux 0.10 code imports them from."""

from __future__ import annotations

import importlib
import json

import pytest

import routilux
import routilux.builtin_routines as package
from routilux import Routine

# What routilux 0.10.0 exports (observed: each subpackage's __all__ and its submodules).
SUBPACKAGES = {
    "text_processing": {"TextClipper": "text_clipper", "TextRenderer": "text_renderer",
                        "ResultExtractor": "result_extractor"},
    "utils": {"TimeProvider": "time_provider", "DataFlattener": "data_flattener"},
    "data_processing": {"DataTransformer": "data_transformer", "DataValidator": "data_validator"},
    "control_flow": {"ConditionalRouter": "conditional_router"},
}


def test_the_package_exports_the_eight_routines_in_010_order():
    """routilux.builtin_routines.__all__ lists the same names, in the same order, as 0.10."""
    assert package.__all__ == ["TextClipper", "TextRenderer", "ResultExtractor", "TimeProvider", "DataFlattener",
                               "DataTransformer", "DataValidator", "ConditionalRouter"]


@pytest.mark.parametrize("subpackage", sorted(SUBPACKAGES))
def test_subpackages_and_modules(subpackage):
    """Each subpackage exports its routines, each defined in the module 0.10 put it in."""
    sub = importlib.import_module(f"routilux.builtin_routines.{subpackage}")
    assert sub.__all__ == list(SUBPACKAGES[subpackage])
    for name, module_name in SUBPACKAGES[subpackage].items():
        module = importlib.import_module(f"routilux.builtin_routines.{subpackage}.{module_name}")
        cls = getattr(module, name)
        assert cls is getattr(sub, name) is getattr(package, name) is getattr(routilux, name)
        assert cls.__module__ == module.__name__


@pytest.mark.parametrize("name", package.__all__)
def test_each_routine_is_a_documented_no_argument_routine(name):
    """Each is a Routine built without arguments (so flows can rebuild it), documented, JSON-serializable."""
    cls = getattr(package, name)
    routine = cls()
    assert isinstance(routine, Routine) and cls.__doc__
    json.dumps(routine.serialize())  # DataTransformer's built-ins are written by reference
