"""ConditionalRouter: string, dict and function conditions, priorities, defaults, a real flow."""

from __future__ import annotations

import pytest
from builtin_support import assert_replays, history, run_flow, send

from routilux import Flow, JobState
from routilux.builtin_routines import ConditionalRouter

HIGH = {"priority": "high", "value": 20}
LOW = {"priority": "low", "value": 1}


def route(emits, data, **config):
    router = ConditionalRouter()
    router.set_config(**config)
    out = emits(router)
    send(router, {"data": data})
    return out


def test_defaults_slots_and_events():
    """0.10's configuration, slot ``input``, the fallback event ``output``."""
    router = ConditionalRouter()
    assert router.config() == {"routes": [], "default_route": None, "route_priority": "first_match"}
    assert router.input_slot is router.get_slot("input")
    assert router.default_output is router.get_event("output")
    assert router.default_output.output_params == ["data", "route"]


def test_string_conditions_see_data_and_config(emits):
    """String expressions are evaluated over data and the routine's config; first match wins."""
    routes = [("high", "data.get('priority') == 'high'"),
              ("big", "data.get('value', 0) > config.get('threshold', 0)")]
    assert route(emits, HIGH, routes=routes, threshold=10) == [("high", {"data": HIGH, "route": "high"})]
    assert route(emits, {"value": 11}, routes=routes, threshold=10) == [("big", {"data": {"value": 11}, "route": "big"})]


def test_string_conditions_that_fail_do_not_match(emits):
    """Syntax errors, exceptions and missing builtins all count as no match."""
    routes = [("syntax", "data.get("), ("raises", "data['missing']"), ("no_open", "open('/etc/passwd')"),
              ("no_import", "__import__('os')"), ("stats", "stats == {} and len(data) == 1")]
    assert route(emits, {"k": 1}, routes=routes) == [("stats", {"data": {"k": 1}, "route": "stats"})]


def test_string_conditions_have_only_the_documented_builtins(emits):
    """isinstance, dict, list, str, int, float, bool, len, getattr and hasattr are available."""
    expression = ("isinstance(data, dict) and len(list(data)) == 1 and str(int(float(bool(1)))) == '1' "
                  "and hasattr(data, 'get') and getattr(data, 'get')('k') == dict(k=1)['k']")
    assert [name for name, _ in route(emits, {"k": 1}, routes=[("ok", expression)])] == ["ok"]
    assert [name for name, _ in route(emits, {"k": 1}, routes=[("no", "sorted(data)")])] == ["output"]


def test_an_expression_cannot_leave_names_behind(emits):
    """Each evaluation starts from a clean scope: a name set by one is unknown to the next."""
    routes = [("set", "[x := 1] and False"), ("read", "x == 1")]
    assert [name for name, _ in route(emits, {}, routes=routes)] == ["output"]


def test_dict_conditions(emits):
    """Every key must be present with an equal value, or one a given function accepts."""
    routes = [("high", {"priority": "high", "value": lambda v: v > 10}), ("low", {"priority": "low"})]
    assert [name for name, _ in route(emits, HIGH, routes=routes)] == ["high"]
    assert [name for name, _ in route(emits, LOW, routes=routes)] == ["low"]
    assert [name for name, _ in route(emits, {"priority": "high", "value": 5}, routes=routes)] == ["output"]
    assert [name for name, _ in route(emits, ["not", "a", "dict"], routes=routes)] == ["output"]


def module_condition(data, config):
    """A module-level condition that reads the routine's configuration."""
    return isinstance(data, dict) and data.get("value", 0) > config.get("threshold", 0)


@pytest.mark.parametrize(
    ("condition", "data", "matches"),
    [
        (lambda d: d == 1, 1, True),
        (module_condition, {"value": 11}, True),  # two parameters naming config: data=, config=
        (lambda data, stats: stats == {} and data == 1, 1, True),
        (lambda a, b: a == 1 and b["threshold"] == 10, 1, True),  # two positional: data, config
        (lambda data, config, stats: data == config["threshold"] and stats == {}, 10, True),
        (lambda *, data: data == 1, 1, False),  # one parameter is passed positionally, even keyword-only
        (lambda x, y, z: True, 1, False),  # names neither data nor config: called with data alone, fails
        (lambda: True, 1, False),  # no parameter: every call fails
        (len, [1], True),  # builtins without a usable signature are called with data
    ],
)
def test_function_conditions_get_what_they_name(emits, condition, data, matches):
    """Functions are called with data, config and stats according to their parameters."""
    out = route(emits, data, routes=[("hit", condition)], threshold=10)
    assert [name for name, _ in out] == (["hit"] if matches else ["output"])


def test_a_failing_function_is_retried_with_data_alone(emits):
    """When the call with config fails, the function is called once more with data alone (0.10)."""
    calls = []

    def picky(data, config=None):
        calls.append(config)
        if config is not None:
            raise RuntimeError("config not wanted")
        return True

    assert [name for name, _ in route(emits, 1, routes=[("hit", picky)])] == ["hit"]
    assert calls == [{"routes": [("hit", picky)], "default_route": None, "route_priority": "first_match"}, None]


def test_all_matches_emits_on_every_matching_route_in_order(emits):
    """With route_priority other than first_match, every matching route gets the data."""
    routes = [("a", "True"), ("b", "False"), ("c", {"priority": "high"})]
    out = route(emits, HIGH, routes=routes, route_priority="all_matches")
    assert out == [("a", {"data": HIGH, "route": "a"}), ("c", {"data": HIGH, "route": "c"})]


def test_default_and_unmatched(emits):
    """No match goes to default_route, else to ``output`` with route 'unmatched'."""
    assert route(emits, LOW, routes=[("high", {"priority": "high"})], default_route="normal") == [
        ("normal", {"data": LOW, "route": "normal"})]
    assert route(emits, LOW, routes=[("high", {"priority": "high"})]) == [
        ("output", {"data": LOW, "route": "unmatched"})]


def test_other_condition_types_never_match(emits):
    """A condition that is not a string, dict or function never matches."""
    assert [name for name, _ in route(emits, 1, routes=[("n", None), ("i", 1), ("l", [1])])] == ["output"]


def test_a_malformed_route_raises(emits):
    """A route that is not a (name, condition) pair is an error of the whole input."""
    router = ConditionalRouter()
    router.set_config(routes=[("only-a-name",)])
    with pytest.raises(ValueError, match="not enough values to unpack"):
        send(router, {"data": 1})


def test_route_events_are_defined_when_first_used():
    """A route's event is created on first use, and add_route creates it at once."""
    router = ConditionalRouter()
    router.set_config(routes=[("later", "True")], default_route="fallback")
    assert router.get_event("later") is None
    send(router, {"data": 1})
    assert router.get_event("later").output_params == ["data", "route"]
    router.add_route("now", {"k": 1})
    assert router.get_event("now") is not None
    assert router.get_config("routes") == [("later", "True"), ("now", {"k": 1})]


def test_routes_run_concurrently_without_clashing_event_definitions():
    """Concurrent handlers defining the same route event at once record no error."""
    router = ConditionalRouter()
    router.set_config(routes=[("even", "data % 2 == 0")], default_route="odd")
    flow = Flow(flow_id="concurrent-router", execution_strategy="concurrent", max_workers=4)
    from builtin_support import Source

    flow.add_routine(Source(), "source")
    flow.add_routine(router, "router")
    flow.connect("source", "out", "router", "input")
    job = flow.execute("source", entry_params={"items": [{"data": i} for i in range(200)]})
    assert JobState.wait_for_completion(flow, job, timeout=60)
    flow.shutdown(wait=True)
    names = [r.event_name for r in job.get_execution_history("router")]
    assert sorted(names) == ["even"] * 100 + ["odd"] * 100
    assert_replays(job)


def test_in_a_flow_each_route_reaches_its_sink_and_the_job_replays():
    """Through a real flow: routed data reaches the connected sinks; the history replays."""
    router = ConditionalRouter()
    router.set_config(routes=[("high", "data.get('priority') == 'high'"), ("low", {"priority": "low"})],
                      default_route="other")
    _, job, got = run_flow(router, [{"data": HIGH}, {"data": LOW}, {"data": {"priority": "mid"}}],
                           events=["high", "low", "other", "output"])
    assert job.status == "completed"
    assert got == {"high": [{"data": HIGH, "route": "high"}], "low": [{"data": LOW, "route": "low"}],
                   "other": [{"data": {"priority": "mid"}, "route": "other"}], "output": []}
    assert [name for name, _ in history(job)] == ["high", "low", "other"]
    assert_replays(job)


def test_the_documented_usage_outside_a_flow():
    """The 0.10 quickstart: define the route events, then ``input_slot.receive({"data": ...})``."""
    from builtin_support import Sink

    router = ConditionalRouter()
    router.set_config(routes=[("high", "data.get('priority', 0) > 10"), ("normal", "data.get('priority', 0) <= 10")],
                      default_route="normal")
    high, normal = Sink(), Sink()
    router.define_event("high").connect(high.get_slot("in"))
    router.define_event("normal").connect(normal.get_slot("in"))
    router.input_slot.receive({"data": {"priority": 15}})
    router.input_slot.receive({"data": {"priority": 3}})
    assert high.received == [{"data": {"priority": 15}, "route": "high"}]
    assert normal.received == [{"data": {"priority": 3}, "route": "normal"}]
