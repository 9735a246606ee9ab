"""Differential check: the builtin routines here against routilux 0.10.0, on the same inputs.

Not a test (CI has no routilux 0.10 venv). Run it by hand:

    .venv/bin/python scripts/diff_builtins.py [--ref /work/ref/rx010-venv/bin/python] [--seed N] [--random N]

It runs itself twice, once under each interpreter (``--side`` mode), feeding every case to the
routine's slot handler directly (exceptions included) and, for the flow cases, through a real
Flow (source -> routine -> sink) whose job history is compared. Outputs are compared by
``repr`` (types, float bits and key order included), with memory addresses blanked. It prints
one line per difference and a summary; exit code 1 if anything differs.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

REF_PYTHON = "/work/ref/rx010-venv/bin/python"
ROOT = Path(__file__).resolve().parent.parent
FIXED_NOW = datetime(2026, 12, 4, 9, 30, 15, 123456)  # a Friday


# -- cases (run on both sides) -------------------------------------------------------------------
def module_level_condition(data, config):  # type: ignore[no-untyped-def]
    return isinstance(data, dict) and data.get("v", 0) > config.get("threshold", 0)


def cases(B: Any, rnd: random.Random, n_random: int) -> dict[str, tuple[Any, list[dict[str, Any]]]]:
    """name -> (configured routine, payloads delivered to its input slot)."""
    out: dict[str, tuple[Any, list[dict[str, Any]]]] = {}

    def add(name: str, cls: str, config: dict[str, Any], payloads: list[dict[str, Any]], setup: Any = None) -> None:
        routine = getattr(B, cls)()
        routine.set_config(**config)
        if setup is not None:
            setup(routine)
        out[name] = (routine, payloads)

    long_text = "\n".join(f"line {i} " + "x" * (i % 7) for i in range(40))
    texts = [{"text": "short"}, {"text": long_text}, {"data": long_text}, {"content": long_text},
             {"text": "Traceback (most recent call last):\n" + long_text}, {"text": ""},
             {"a": 1, "b": "only string"}, {"a": 1, "b": 2}, {"text": long_text, "max_length": 30},
             {"text": "a" * 50}, {"text": long_text, "max_length": 0}, {"message": "m" * 20, "x": 1},
             {"data": {"content": "c" * 30}}, {"data": 12345}, {}]
    add("clipper/default", "TextClipper", {}, texts)
    add("clipper/short", "TextClipper", {"max_length": 25}, texts)
    add("clipper/no-tb", "TextClipper", {"max_length": 40, "preserve_tracebacks": False}, texts)
    add("clipper/message", "TextClipper", {"max_length": 40, "truncation_message": "[{remaining} more]"}, texts)
    add("clipper/bad-message", "TextClipper", {"max_length": 40, "truncation_message": "{oops}"}, texts[:3])

    nested = {"name": "Alice", "tags": ["a", "b"], "address": {"city": "Paris", "zip": 75001},
              "empty": {}, "none": None, "flag": True, "nums": [1, [2, [3]]], "t": (1, 2)}
    loop: dict[str, Any] = {"a": 1}
    loop["self"] = loop
    shared = [1, 2]
    renders = [{"data": nested}, {"data": [nested, []]}, {"data": "plain"}, {"data": 3.5},
               {"data": loop}, {"data": {"x": shared, "y": shared}}, {"a": 1, "b": {"c": 2}}, {}]
    add("renderer/xml", "TextRenderer", {}, renders)
    add("renderer/markdown", "TextRenderer", {"tag_format": "markdown", "indent": "\t"}, renders)
    add("renderer/other", "TextRenderer", {"tag_format": "html"}, renders[:2])

    fence = "```"
    llm = (f"Here:\n{fence}json\n{{\"a\": 1}}\n{fence}\nand\n{fence}json\n[1, 2]\n{fence}\n"
           f"{fence}python\nprint(1)\n{fence}\n{fence}{{python}}\nx = 2\n{fence}\n")
    extracts = [{"data": llm}, {"data": '{"k": [1, 2, {"z": null}]}'}, {"data": "[]"}, {"data": "{}"},
                {"data": "[1]"}, {"data": "not json {"}, {"data": f"{fence}json\nbroken\n{fence}"},
                {"data": f"{fence}JSON  \n{{\"up\": true}}\n{fence}"},
                {"data": f"{fence}output\nresult 42\n{fence}"}, {"data": f"{fence}xml\n<a/>\n{fence}"},
                {"data": f"{fence}yaml\na: 1\n{fence}"},
                {"data": [{"format": "output", "content": "hello"}, {"format": "code", "content": "x"}, "  ",
                          "tail", {"content": ""}]},
                {"data": [{"format": "text"}]}, {"data": ["just", "strings"]}, {"data": {"k": "v"}},
                {"data": []}, {"data": {}}, {}, {"data": 7}, {"data": "   "}, {"data": None}]
    add("extractor/auto", "ResultExtractor", {}, extracts)
    add("extractor/all", "ResultExtractor", {"strategy": "all"}, extracts)
    add("extractor/best", "ResultExtractor", {"strategy": "best"}, extracts)
    add("extractor/first_match", "ResultExtractor", {"strategy": "first_match"}, extracts[:6])
    add("extractor/switches-off", "ResultExtractor",
        {"extract_json_blocks": False, "extract_code_blocks": False, "parse_json_strings": False,
         "format_interpreter_output": False}, extracts)
    add("extractor/xml-on", "ResultExtractor", {"extract_xml_blocks": True, "code_block_languages": ["output"]}, extracts)
    add("extractor/priority", "ResultExtractor", {"extractor_priority": ["list_extractor", "code_block"]}, extracts)
    add("extractor/no-original", "ResultExtractor", {"return_original_on_failure": False, "log_errors": False},
        [{"data": 7}, {"data": "plain"}])

    def boom(data, config):  # type: ignore[no-untyped-def]
        if data == "boom":
            raise RuntimeError("custom extractor exploded")
        return ("custom!", "custom", {"extraction_method": "custom_code_block"}) if data == "c" else None

    def with_custom(r: Any) -> None:
        r.register_extractor("custom", boom)

    custom_inputs = [{"data": "boom"}, {"data": "c"}, {"data": "zzz"}, {"data": {"d": 1}}]
    add("extractor/custom", "ResultExtractor", {"log_errors": False}, custom_inputs, with_custom)
    add("extractor/custom-first", "ResultExtractor", {"log_errors": False, "extractor_priority": ["custom"]},
        custom_inputs, with_custom)
    add("extractor/custom-stop", "ResultExtractor",
        {"log_errors": False, "extractor_priority": ["custom"], "continue_on_error": False}, custom_inputs, with_custom)
    add("extractor/custom-all", "ResultExtractor", {"log_errors": False, "strategy": "all"}, custom_inputs, with_custom)

    requests = [{}, {"format": "timestamp"}, {"format": "custom"}, {"format": "formatted"}, {"format": "bogus"},
                {"data": {"format": "custom"}}, {"data": {}}, {"data": "x", "format": "timestamp"}]
    add("time/iso", "TimeProvider", {}, requests)
    add("time/en", "TimeProvider", {"format": "formatted", "locale": "en_US"}, requests)
    add("time/en-no-weekday", "TimeProvider", {"format": "formatted", "locale": "en_US", "include_weekday": False}, requests)
    add("time/zh-no-weekday", "TimeProvider", {"format": "formatted", "include_weekday": False}, requests[:1])
    add("time/custom", "TimeProvider", {"format": "custom", "custom_format": "%d/%m/%Y %Hh"}, requests)

    flats = [{"data": nested}, {"data": [nested, [[1]]]}, {"data": 5}, {"data": loop}, {"data": {"": {"": 1}}},
             {"data": {1: {"a": 1}, 2: [3]}}, {"data": {"a": {}, "b": []}}, {"x": 1, "y": {"z": 2}}, {}]
    add("flattener/default", "DataFlattener", {}, flats)
    add("flattener/sep", "DataFlattener", {"separator": "__"}, flats)
    add("flattener/no-lists", "DataFlattener", {"preserve_lists": False}, flats)
    add("flattener/depth1", "DataFlattener", {"max_depth": 1}, flats)
    add("flattener/depth0", "DataFlattener", {"max_depth": 0}, flats[:3])

    def double(x):  # type: ignore[no-untyped-def]
        return x * 2

    values = [{"data": "  Hello World  "}, {"data": 3.7}, {"data": "42"}, {"data": "x"}, {"data": True},
              {"data": {"a": None, "b": 1}}, {"data": ["L"]}, {"data": None}]
    add("transformer/none", "DataTransformer", {}, values)
    add("transformer/strings", "DataTransformer", {"transformations": ["strip_whitespace", "lowercase"]}, values)
    add("transformer/doc-strip", "DataTransformer", {"transformations": ["lowercase", "strip"]}, values)
    add("transformer/numbers", "DataTransformer", {"transformations": ["to_float", "to_int", "to_string"]}, values)
    add("transformer/upper-none", "DataTransformer", {"transformations": ["uppercase", "remove_none"]}, values)
    add("transformer/callables", "DataTransformer", {"transformations": [double, str.upper, 42, "double"]}, values)
    add("transformer/registered", "DataTransformer", {"transformations": ["double", "to_string"]}, values,
        lambda r: r.register_transformation("double", double))
    add("transformer/replaced-map", "DataTransformer",
        {"transformation_map": {"double": double}, "transformations": ["double", "lowercase"]}, values)
    add("transformer/override", "DataTransformer", {"transformations": ["uppercase"]},
        [{"data": "a b", "transformations": ["to_string", "strip_whitespace"]}, {"data": "a", "transformations": []}])

    records = [{"data": {"name": "Bob", "age": 30}}, {"data": {"name": "", "age": -1}}, {"data": {"age": "x"}},
               {"data": {"name": "Z", "age": 3, "extra": 1}}, {"data": {}}, {"data": [1, -2, "3"]},
               {"data": (0, 1)}, {"data": 5}, {"data": "text"}, {"name": "Ann", "age": 4}, {"name": "solo"},
               {"data": {"name": "r"}, "rules": {"name": "is_int"}}]
    rules = {"name": "not_empty", "age": "is_positive", "items": "is_positive", "value": "is_int"}
    add("validator/rules", "DataValidator", {"rules": rules, "required_fields": ["name", "age"]}, records)
    add("validator/strict", "DataValidator",
        {"rules": rules, "required_fields": ["name", "age", "id"], "strict_mode": True}, records)
    add("validator/no-extra", "DataValidator",
        {"rules": {"name": "is_string"}, "allow_extra_fields": False}, records)
    add("validator/no-extra-strict", "DataValidator",
        {"rules": {"name": "is_string"}, "allow_extra_fields": False, "strict_mode": True}, records)
    add("validator/builtins", "DataValidator",
        {"rules": {"a": "is_string", "b": "is_int", "c": "is_float", "d": "is_number", "e": "is_dict",
                   "f": "is_list", "g": "is_non_negative", "h": "nope", "i": 42}},
        [{"data": {"a": "s", "b": 1, "c": 1.0, "d": 2, "e": {}, "f": [], "g": 0, "h": 1, "i": 1}},
         {"data": {"a": 1, "b": 1.5, "c": 1, "d": "2", "e": [], "f": {}, "g": -1}},
         {"data": {"b": True, "g": True}}])
    add("validator/functions", "DataValidator",
        {"rules": {"a": lambda v: (v > 0, f"a must be positive, got {v}"), "b": lambda v: v,
                   "c": lambda v: 1 / v, "d": lambda v: (False, None), "e": lambda v: (True, "ignored")}},
        [{"data": {"a": 1, "b": 1, "c": 1, "e": 0}}, {"data": {"a": -1, "b": 0, "c": 0, "d": 1}},
         {"data": {"a": "s"}}])
    add("validator/registered", "DataValidator", {"rules": {"a": "even"}},
        [{"data": {"a": 2}}, {"data": {"a": 3}}], lambda r: r.register_validator("even", lambda v: v % 2 == 0))

    routed = [{"data": {"priority": "high", "v": 20}}, {"data": {"priority": "low", "v": 1}},
              {"data": {"priority": "mid"}}, {"data": [1, 2]}, {"data": "str"}, {"data": None},
              {"priority": "high", "v": 3}]
    add("router/strings", "ConditionalRouter",
        {"routes": [("high", "data.get('priority') == 'high'"),
                    ("low", "isinstance(data, dict) and data.get('priority') == 'low'"),
                    ("big", "data.get('v', 0) > config.get('threshold', 0)"),
                    ("stats", "stats.get('count', 0) < 10 and len(data) > 100"),
                    ("syntax", "data.get(")],
         "threshold": 10}, routed)
    add("router/all", "ConditionalRouter",
        {"routes": [("high", {"priority": "high"}), ("big", {"v": lambda v: v > 10}), ("any", "True")],
         "route_priority": "all_matches"}, routed)
    add("router/default", "ConditionalRouter",
        {"routes": [("high", {"priority": "high"})], "default_route": "normal"}, routed)
    add("router/unmatched", "ConditionalRouter", {"routes": [("none", "False"), ("odd", 42)]}, routed)
    add("router/functions", "ConditionalRouter",
        {"routes": [("one", lambda d: isinstance(d, dict) and d.get("v") == 1),
                    ("two-cfg", lambda d, config: d.get("v") == config["n"]),
                    ("two-pos", lambda a, b: a == b),
                    ("named", lambda data, config, stats: stats == {} and data == config.get("want")),
                    ("kw", lambda *, data: data == "str"),
                    ("noarg", lambda: True),
                    ("module", module_level_condition),
                    ("raises", lambda d: d["missing"])],
         "n": 20, "want": None, "threshold": 0, "route_priority": "all"}, routed)
    add("router/add_route", "ConditionalRouter", {},
        routed, lambda r: (r.add_route("high", "data.get('priority') == 'high'"), r.add_route("low", {"priority": "low"})))

    rnd_values = [_random_value(rnd, 0) for _ in range(n_random)]
    for cls in ("TextRenderer", "DataFlattener", "ResultExtractor", "DataValidator", "TextClipper", "DataTransformer"):
        config: dict[str, Any] = {}
        if cls == "DataValidator":
            config = {"rules": {"a": "is_int", "b": "not_empty", "items": "is_string", "value": "is_positive"},
                      "required_fields": ["a"]}
        if cls == "TextClipper":
            config = {"max_length": 20}
        if cls == "DataTransformer":
            config = {"transformations": ["to_int", "remove_none", "uppercase"]}
        key = "text" if cls == "TextClipper" else "data"  # 0.10's TextClipper raises on "data"
        add(f"random/{cls}", cls, config, [{key: v} for v in rnd_values])
    return out


def _random_value(rnd: random.Random, depth: int) -> Any:
    kind = rnd.choice(["int", "float", "str", "json", "none", "bool", "list", "dict", "fence"] if depth < 4 else
                      ["int", "str", "none"])
    if kind == "int":
        return rnd.randint(-5, 100)
    if kind == "float":
        return rnd.choice([0.0, 1.5, -2.25, 1e10])
    if kind == "str":
        return rnd.choice(["", " ", "a", "Hello\nWorld", "Traceback", "x" * 30, "12", "{", "[1]"])
    if kind == "json":
        return json.dumps(_random_value(rnd, depth + 2) if rnd.random() < 0.5 else {"k": [1, 2]})
    if kind == "fence":
        lang = rnd.choice(["json", "python", "output", "xml", "text"])
        return f"pre\n```{lang}\n{json.dumps({'n': rnd.randint(0, 9)})}\n```\npost"
    if kind == "none":
        return None
    if kind == "bool":
        return rnd.random() < 0.5
    if kind == "list":
        return [_random_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
    return {rnd.choice("abcdef"): _random_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))}


# -- one side ------------------------------------------------------------------------------------
def _freeze_clock() -> None:
    from routilux.builtin_routines.utils import time_provider as tp

    if hasattr(tp, "_now"):  # this package
        tp._now = lambda: FIXED_NOW  # type: ignore[attr-defined]
        return

    class Frozen(datetime):  # routilux 0.10 reads datetime.now() and time.time()
        @classmethod
        def now(cls, tz: Any = None) -> Any:  # type: ignore[override]
            return FIXED_NOW

    class Clock:
        @staticmethod
        def time() -> float:
            return FIXED_NOW.timestamp()

    tp.datetime = Frozen  # type: ignore[attr-defined,misc]
    tp.time = Clock  # type: ignore[attr-defined,assignment]


def _direct(routine: Any, payloads: list[dict[str, Any]]) -> list[str]:
    emitted: list[Any] = []
    routine.emit = lambda name, flow=None, **kw: emitted.append((name, kw))
    slot = routine.get_slot("input") or routine.get_slot("request")
    results = []
    for payload in payloads:
        del emitted[:]
        try:
            slot.call_handler(dict(payload), propagate_exceptions=True)
            results.append(repr(emitted))
        except Exception as exc:
            results.append(f"raised {type(exc).__name__}: {exc} after {emitted!r}")
    return results


def _through_flow(B: Any, name: str, payloads: list[dict[str, Any]], rnd: random.Random) -> list[str]:
    """Source -> builtin -> sink in a real Flow; returns the job's history (minus timestamps)."""
    import routilux

    class Source(routilux.Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.go)
            self.define_event("out")

        def go(self, items: Any = None, **_: Any) -> None:
            for item in items:
                self.emit("out", **item)

    class Sink(routilux.Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("in", handler=lambda **kw: None)

    routine, _ = cases(B, rnd, 0)[name]
    flow = routilux.Flow(flow_id="diff")
    flow.add_routine(Source(), "source")
    flow.add_routine(routine, "builtin")
    flow.add_routine(Sink(), "sink")
    slot_name = "input" if routine.get_slot("input") else "request"
    flow.connect("source", "out", "builtin", slot_name)
    for event in list(routine._events):
        flow.connect("builtin", event, "sink", "in")
    job = flow.execute("source", entry_params={"items": payloads})
    routilux.JobState.wait_for_completion(flow, job, timeout=30)
    flow.shutdown(wait=True)
    rows = [repr((r.routine_id, r.event_name, _plain(r.data))) for r in job.execution_history
            if r.routine_id != "source"]
    return [job.status, *rows]


def _plain(value: Any) -> Any:
    # Our history hands out read-only dict/list views; compare their contents as plain types.
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


FLOW_CASES = ["clipper/default", "renderer/xml", "extractor/auto", "time/iso", "flattener/default",
              "transformer/strings", "validator/rules", "router/strings", "router/all", "router/default"]


def run_side(seed: int, n_random: int) -> dict[str, list[str]]:
    import logging

    import routilux.builtin_routines as B

    logging.disable(logging.CRITICAL)
    _freeze_clock()
    results = {name: _direct(r, p) for name, (r, p) in cases(B, random.Random(seed), n_random).items()}
    for name in FLOW_CASES:
        payloads = cases(B, random.Random(seed), 0)[name][1]
        # Flow data must survive the log (str keys, no cycles): keep the cases that can.
        payloads = [p for p in payloads if _storable(p)]
        results[f"flow:{name}"] = _through_flow(B, name, payloads, random.Random(seed))
    return results


def _storable(value: Any, depth: int = 0) -> bool:
    if depth > 20:
        return False
    if isinstance(value, dict):
        return all(isinstance(k, str) and _storable(v, depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_storable(v, depth + 1) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


# -- driver --------------------------------------------------------------------------------------
def _normalise(text: str) -> str:
    return re.sub(r"0x[0-9a-f]+", "0x?", text)


def _known(ref: str, ours: str) -> str | None:
    """The reason for a difference that is deliberate (reported, not counted), or None."""
    if "got multiple values for argument 'data'" in ref and "multiple values" not in ours:
        return "TextClipper reads {'data': text} (0.10 raised TypeError)"
    if ref.startswith("raised ValueError") and ours.replace("ExtractionError", "ValueError", 1) == ref:
        return "ExtractionError (a ValueError subclass) instead of a plain ValueError"
    if "'error_type':" in ours and re.sub(r", 'error_type': .*\}\)$", "})", ours) == ref:
        return "the engine's error records add error_type and a traceback summary"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", action="store_true", help="internal: run this side, print JSON")
    parser.add_argument("--ref", default=REF_PYTHON, help="python of a venv with routilux 0.10.0")
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--random", type=int, default=200, help="random inputs per routine")
    args = parser.parse_args()
    if args.side:
        print(json.dumps(run_side(args.seed, args.random)))
        return 0
    me = str(Path(__file__).resolve())
    sides = {}
    for label, python in (("0.10", args.ref), ("ours", sys.executable)):
        done = subprocess.run([python, me, "--side", "--seed", str(args.seed), "--random", str(args.random)],
                              capture_output=True, text=True, cwd="/", check=False)
        if done.returncode != 0:
            print(f"{label} side failed:\n{done.stderr}")
            return 2
        sides[label] = json.loads(done.stdout)
    ref, ours = sides["0.10"], sides["ours"]
    differences = compared = 0
    known: dict[str, int] = {}
    for name in ref:
        for i, (a, b) in enumerate(zip(ref[name], ours.get(name, []), strict=False)):
            compared += 1
            a, b = _normalise(a), _normalise(b)
            if a == b:
                continue
            reason = _known(a, b)
            if reason is not None:
                known[reason] = known.get(reason, 0) + 1
                continue
            differences += 1
            print(f"DIFF {name} #{i}\n  0.10: {a[:600]}\n  ours: {b[:600]}")
        if len(ref[name]) != len(ours.get(name, [])):
            differences += 1
            print(f"DIFF {name}: {len(ref[name])} results in 0.10, {len(ours.get(name, []))} here")
    for reason, count in known.items():
        print(f"known difference x{count}: {reason}")
    print(f"{compared} outputs compared over {len(ref)} cases (seed {args.seed}), {differences} differ "
          f"(besides {sum(known.values())} known)")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
