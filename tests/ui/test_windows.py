"""The scrubber's keyframes and patches rebuild exactly the states the fold gives."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from ui_jobs import operations, random_job

from replay_tools import diff_states, projection_at, state_dict
from replay_tools.paths import parse_path
from replay_tools.ui.display import escape_segment, to_display
from replay_tools.ui.windows import WINDOW, compute_window, iter_windows, window_base


def apply_ops(state: dict[str, Any], ops: list[list[Any]]) -> None:
    """The page's generic patcher (app.js ``applyPatch``), in Python."""
    for op in ops:
        path = op[0]
        parent: Any = state
        for seg in path[:-1]:
            parent = parent[int(seg)] if isinstance(parent, list) else parent[seg]
        last = path[-1]
        if len(op) == 1:
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                del parent[last]
        elif isinstance(parent, list):
            index = int(last)
            if index == len(parent):
                parent.append(op[1])
            else:
                parent[index] = op[1]
        else:
            parent[last] = op[1]


def expected(job: Any, version: int) -> dict[str, Any]:
    return to_display(state_dict(projection_at(job, version, history=False), history=False))  # type: ignore[no-any-return]


@given(st.lists(operations, min_size=1, max_size=30), st.integers(1, 6))
@settings(max_examples=40)
def test_patches_rebuild_every_state(ops: list[Any], size: int) -> None:
    """Keyframe + patches == the fold's state at every version, whatever the window size."""
    with random_job(ops) as job:
        seen = 0
        for win in iter_windows(job, 1, job.head, size=size):
            state = win["state"]
            assert state == expected(job, win["base"])
            for offset, ops_v in enumerate(win["patches"][1:], start=1):
                apply_ops(state, ops_v)
                assert state == expected(job, win["base"] + offset)
            seen = win["last"]
        assert seen == job.head


@given(st.lists(operations, min_size=2, max_size=25))
@settings(max_examples=30)
def test_patch_paths_are_the_diff_paths(ops: list[Any]) -> None:
    """The fields highlighted for event v are the fields `diff v-1 v` lists (history lists aside)."""
    with random_job(ops) as job:
        for win in iter_windows(job, 1, job.head):
            for offset, ops_v in enumerate(win["patches"]):
                v = win["base"] + offset
                if v == 1:
                    continue
                before = state_dict(projection_at(job, v - 1, history=False), history=False)
                after = state_dict(projection_at(job, v, history=False), history=False)
                paths = sorted(tuple(escape_segment(s) for s in parse_path(d.path)) for d in diff_states(before, after))
                assert sorted(tuple(op[0]) for op in ops_v) == paths


def test_windows_align_and_start_anywhere(demo_job: Any) -> None:
    """Windows start at 1 + k*WINDOW; a range may start inside one; compute_window agrees."""
    assert window_base(1) == 1 and window_base(WINDOW) == 1 and window_base(WINDOW + 1) == WINDOW + 1
    head = demo_job.head
    wins = list(iter_windows(demo_job, 5, head, size=8))
    assert [w["base"] for w in wins] == [5, 9, 17, 25, 33][: len(wins)]
    assert wins[-1]["last"] == head
    single = compute_window(demo_job, 9, 16)
    assert single["state"] == wins[1]["state"] and single["patches"] == wins[1]["patches"]
