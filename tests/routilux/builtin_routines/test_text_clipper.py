"""TextClipper: configuration, clipping rules, input shapes, errors, and a real flow."""

from __future__ import annotations

import pytest
from builtin_support import assert_replays, history, run_flow, send
from hypothesis import given
from hypothesis import strategies as st

from routilux.builtin_routines import TextClipper
from routilux.builtin_routines.text_processing.text_clipper import TextClipper as FromModule

TEN_LINES = "\n".join(f"line-{i}" for i in range(10))  # 6 chars per line


def clip(emits, payload, **config):
    clipper = TextClipper()
    clipper.set_config(**config)
    out = emits(clipper)
    send(clipper, payload)
    assert [name for name, _ in out] == ["output"]
    return out[0][1]


def test_defaults_slots_and_events():
    """0.10's defaults, slot ``input`` and event ``output`` with its documented keys."""
    clipper = TextClipper()
    assert FromModule is TextClipper
    assert clipper.config() == {"max_length": 1000, "preserve_tracebacks": True,
                                "truncation_message": "...(省略了{remaining}行)"}
    assert clipper.input_slot is clipper.get_slot("input")
    assert clipper.output_event is clipper.get_event("output")
    assert clipper.output_event.output_params == ["clipped_text", "was_clipped", "original_length"]
    assert list(clipper._slots) == ["input"] and list(clipper._events) == ["output"]


def test_short_text_passes_through(emits):
    """Text no longer than max_length is emitted unchanged."""
    assert clip(emits, {"text": "hello"}) == {"clipped_text": "hello", "was_clipped": False, "original_length": 5}
    exact = "x" * 20
    assert clip(emits, {"text": exact}, max_length=20)["was_clipped"] is False


def test_clips_whole_lines_with_the_default_message(emits):
    """Lines are kept while their length plus a newline each stays strictly below the limit."""
    # 3 lines take 3 * 7 = 21 < 22; a 4th would reach 28.
    out = clip(emits, {"text": TEN_LINES}, max_length=22)
    assert out == {"clipped_text": "line-0\nline-1\nline-2\n...(省略了7行)", "was_clipped": True,
                   "original_length": len(TEN_LINES)}
    # Exactly reaching the limit does not fit: 21 is not < 21, so only two lines stay.
    assert clip(emits, {"text": TEN_LINES}, max_length=21)["clipped_text"].startswith("line-0\nline-1\n...")


def test_a_first_line_longer_than_the_limit_leaves_only_the_message(emits):
    """When not even the first line fits, the result is a newline and the message."""
    out = clip(emits, {"text": "y" * 50}, max_length=10)
    assert out["clipped_text"] == "\n...(省略了1行)" and out["was_clipped"] is True


def test_custom_truncation_message(emits):
    """truncation_message is formatted with the number of dropped lines."""
    out = clip(emits, {"text": TEN_LINES}, max_length=15, truncation_message="[{remaining} more lines]")
    assert out["clipped_text"] == "line-0\nline-1\n[8 more lines]"


def test_a_message_with_unknown_placeholders_raises(emits):
    """A truncation_message with another {placeholder} raises KeyError when text is clipped."""
    clipper = TextClipper()
    clipper.set_config(max_length=10, truncation_message="{oops}")
    with pytest.raises(KeyError, match="oops"):
        send(clipper, {"text": TEN_LINES})


def test_tracebacks_are_preserved_unless_disabled(emits):
    """Text containing 'Traceback' is never clipped unless preserve_tracebacks is False."""
    text = "Traceback (most recent call last):\n" + TEN_LINES
    kept = clip(emits, {"text": text}, max_length=10)
    assert kept == {"clipped_text": text, "was_clipped": False, "original_length": len(text)}
    cut = clip(emits, {"text": text}, max_length=10, preserve_tracebacks=False)
    assert cut["was_clipped"] is True and cut["clipped_text"].endswith("行)")


def test_max_length_in_the_input_overrides_the_config(emits):
    """A max_length key in the input wins; 0 or None falls back to the configuration."""
    assert clip(emits, {"text": TEN_LINES, "max_length": 8})["clipped_text"] == "line-0\n...(省略了9行)"
    assert clip(emits, {"text": TEN_LINES, "max_length": 0}, max_length=15)["clipped_text"].count("\n") == 2


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        ({"text": "t"}, "t"),
        ({"data": "d"}, "d"),  # routilux 0.10 raised TypeError on this input
        ({"content": "c"}, "c"),  # a single key: its value
        ({"a": 1, "message": "m", "content": "c"}, "c"),  # text/content/message/data, in that order
        ({"a": 1, "b": "first string"}, "first string"),
        ({"a": 1, "b": 2}, "{'a': 1, 'b': 2}"),  # no string at all: str() of the dict
        ({"data": {"message": "inner"}}, "inner"),
        ({"data": 12345}, "12345"),
        ({}, "{}"),
    ],
)
def test_input_shapes(emits, payload, text):
    """Where the text is found in the input, and str() of anything else."""
    assert clip(emits, payload)["clipped_text"] == text


@given(
    lines=st.lists(st.text(alphabet=st.characters(blacklist_characters="\n"), max_size=12), min_size=1, max_size=15),
    limit=st.integers(min_value=1, max_value=120),
)
def test_clipping_keeps_a_prefix_of_whole_lines(lines, limit):
    """Property: the result is the text, or a prefix of its lines below the limit plus the message."""
    text = "\n".join(lines)
    clipper = TextClipper()
    clipper.set_config(max_length=limit, preserve_tracebacks=False, truncation_message="<{remaining}>")
    out = []
    clipper.emit = lambda name, flow=None, **data: out.append(data)  # type: ignore[method-assign]
    send(clipper, {"text": text})
    result = out[0]
    assert result["original_length"] == len(text)
    if len(text) <= limit:
        assert result == {"clipped_text": text, "was_clipped": False, "original_length": len(text)}
        return
    assert result["was_clipped"] is True
    # "\n".join(kept) + "\n" + message: an empty first line kept and no line kept read the
    # same before the message (as in 0.10), so the count in the message says how many were kept.
    head, _, message = result["clipped_text"].rpartition("\n")
    assert message.startswith("<") and message.endswith(">")
    kept = lines[: len(lines) - int(message[1:-1])]
    assert head == "\n".join(kept)
    assert sum(len(line) + 1 for line in kept) < limit
    assert sum(len(line) + 1 for line in lines[: len(kept) + 1]) >= limit


def test_in_a_flow_the_emits_are_recorded_and_replay():
    """Through a real flow: sinks get the output, the history holds it, the events replay."""
    clipper = TextClipper()
    clipper.set_config(max_length=15)
    _, job, got = run_flow(clipper, [{"text": TEN_LINES}, {"text": "short"}])
    assert job.status == "completed"
    expected = [
        {"clipped_text": "line-0\nline-1\n...(省略了8行)", "was_clipped": True, "original_length": len(TEN_LINES)},
        {"clipped_text": "short", "was_clipped": False, "original_length": 5},
    ]
    assert got["output"] == expected
    assert history(job) == [("output", e) for e in expected]
    assert job.get_routine_state("builtin") is None  # no state beyond the emits, as in 0.10
    assert_replays(job)


def test_in_a_flow_an_error_is_recorded_and_the_job_goes_on():
    """A bad truncation_message becomes the routine's error record; later inputs still run."""
    clipper = TextClipper()
    clipper.set_config(max_length=10, truncation_message="{oops}")
    _, job, got = run_flow(clipper, [{"text": TEN_LINES}, {"text": "ok"}])
    assert got["output"] == [{"clipped_text": "ok", "was_clipped": False, "original_length": 2}]
    (error, data), ok = history(job)
    assert error == "error" and data["slot"] == "input" and data["error_type"] == "KeyError"
    assert ok[0] == "output"
    assert_replays(job)
