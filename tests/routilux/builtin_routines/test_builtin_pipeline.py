"""All eight builtin routines in one durable flow: the job on disk replays what ran."""

from __future__ import annotations

from datetime import datetime

from builtin_support import Source, assert_replays
from hypothesis import given
from hypothesis import strategies as st

from routilux import Flow, JobState
from routilux.builtin_routines import (
    ConditionalRouter,
    DataFlattener,
    DataTransformer,
    DataValidator,
    ResultExtractor,
    TextClipper,
    TextRenderer,
    TimeProvider,
)
from routilux.builtin_routines.utils import time_provider

F = "```"


def pipeline() -> Flow:
    """source -> extractor -> validator -> router -> {flattener -> renderer -> clipper, transformer}; clock."""
    flow = Flow(flow_id="pipeline")
    flow.add_routine(Source(), "source")
    extractor, validator, router = ResultExtractor(), DataValidator(), ConditionalRouter()
    validator.set_config(rules={"user": "is_dict", "score": "is_number", "value": "is_dict"},
                         required_fields=["user", "score"])
    router.set_config(routes=[("good", "data['score'] >= 50")], default_route="poor")
    router.define_event("good")
    router.define_event("poor")
    renderer, clipper, transformer = TextRenderer(), TextClipper(), DataTransformer()
    clipper.set_config(max_length=40)
    transformer.set_config(transformations=["to_string", "uppercase"])
    for rid, routine in [("extractor", extractor), ("validator", validator), ("router", router),
                         ("flattener", DataFlattener()), ("renderer", renderer), ("clipper", clipper),
                         ("transformer", transformer), ("clock", TimeProvider())]:
        flow.add_routine(routine, rid)
    flow.connect("source", "out", "extractor", "input")
    flow.connect("extractor", "output", "validator", "input", {"extracted_result": "data"})
    flow.connect("validator", "valid", "router", "input", {"validated_data": "data"})
    flow.connect("router", "good", "flattener", "input")
    flow.connect("flattener", "output", "renderer", "input", {"flattened_data": "data"})
    flow.connect("renderer", "output", "clipper", "input", {"rendered_text": "text"})
    flow.connect("router", "poor", "transformer", "input")
    flow.connect("validator", "invalid", "clock", "request")
    return flow


def test_a_durable_pipeline_replays_from_disk(tmp_path, monkeypatch):
    """Every builtin runs in one flow on a durable job; reopened from disk, the job is the same."""
    monkeypatch.setattr(time_provider, "_now", lambda: datetime(2026, 12, 4, 9, 30))
    answers = [f'{F}json\n{{"user": {{"name": "Ann", "langs": ["py"]}}, "score": 80}}\n{F}',
               '{"user": {"name": "Bob"}, "score": 12}', "no json here"]
    flow = pipeline()
    job = JobState.open(tmp_path / "job", flow_id=flow.flow_id)
    try:
        flow.execute("source", {"items": [{"data": a} for a in answers]}, job_state=job)
        assert JobState.wait_for_completion(flow, job, timeout=30)
        flow.shutdown(wait=True)
        ran = {r.routine_id for r in job.get_execution_history()}
        assert ran >= {"extractor", "validator", "router", "flattener", "renderer", "clipper", "transformer", "clock"}
        (clipped,) = job.get_execution_history("clipper")
        assert clipped.data["clipped_text"].startswith("<user.name>Ann</user.name>")
        (upper,) = job.get_execution_history("transformer")
        assert upper.data["transformed_data"] == "{'USER': {'NAME': 'BOB'}, 'SCORE': 12}"
        (clock,) = job.get_execution_history("clock")
        assert clock.data["time_string"] == "2026-12-04T09:30:00"
        assert not [r for r in job.get_execution_history() if r.event_name == "error"]
        assert_replays(job)
        live = job.serialize()
    finally:
        job.close()
    again = JobState.open(tmp_path / "job", readonly=True)
    try:
        assert again.serialize() == live
    finally:
        again.close()


conditions = st.dictionaries(st.sampled_from("abc"), st.integers(0, 2), max_size=2)


@given(routes=st.lists(conditions, max_size=5), data=st.dictionaries(st.sampled_from("abc"), st.integers(0, 2)),
       all_matches=st.booleans())
def test_router_emits_exactly_the_matching_routes(routes, data, all_matches):
    """Property: the routes emitted are the matching ones in order (only the first unless all_matches)."""
    router = ConditionalRouter()
    router.set_config(routes=[(f"r{i}", c) for i, c in enumerate(routes)],
                      route_priority="all_matches" if all_matches else "first_match")
    emitted = []
    router.emit = lambda name, flow=None, **kw: emitted.append((name, kw))  # type: ignore[method-assign]
    router.input_slot.call_handler({"data": data}, propagate_exceptions=True)
    matching = [f"r{i}" for i, c in enumerate(routes) if all(k in data and data[k] == v for k, v in c.items())]
    expected = (matching if all_matches else matching[:1]) or ["output"]
    assert [name for name, _ in emitted] == expected
    assert all(kw["data"] == data and kw["route"] == (name if matching else "unmatched") for name, kw in emitted)
