"""Hostile msgpack inside frames whose checksums are valid (RELIABILITY.md T10).

A CRC is not a security boundary: someone can write a frame with correct checksums
around a payload built to exhaust memory or the stack. Each case runs in a child
process limited to 512 MiB of address space, under a timeout, and must end in a clean
``CorruptionError`` naming the segment, the frame offset and the seq.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import msgpack
import pytest

CASES: dict[str, bytes] = {
    "array32_huge": b"\xdd\xff\xff\xff\xff",
    "map32_huge": b"\xdf\xff\xff\xff\xff",
    "str32_huge": b"\xdb\xff\xff\xff\xff" + b"a" * 16,
    "bin32_huge": b"\xc6\xff\xff\xff\xff" + b"a" * 16,
    "pair_with_huge_array": b"\x92\xa1k\xdd\xff\xff\xff\xff",
    "nesting_100": b"\x92\xa1k" + b"\x81\xa1a" * 100 + b"\xc0",
    "nesting_100000": b"\x92\xa1k" + b"\x91" * 100_000 + b"\xc0",
    "ext_type_5": b"\x92\xa1k\x81\xa1a\xd4\x05\x00",
    "timestamp_bad_len": b"\x92\xa1k\x81\xa1a\xd5\xff\x00\x00",
    "byte_c1": b"\x92\xa1k\xc1",
    "truncated": msgpack.packb(["k", {"a": "hello"}])[:-2],
    "trailing_bytes": msgpack.packb(["k", {"a": 1}]) + b"\x01",
    "invalid_utf8": b"\x92\xa1k\x81\xa1a\xa2\xff\xfe",
    "unhashable_map_key": b"\x92\xa1k\x81\x91\x01\x01",
    "tuple_ext_not_an_array": b"\x92\xa1k\x81\xa1a\xd4\x01\x05",
    "not_a_pair": msgpack.packb({"a": 1}),
    "nil_array_1mib": b"\xdd" + struct.pack(">I", 1 << 20) + b"\xc0" * (1 << 20),
}



def _tuples_nested(depth: int) -> bytes:
    """A tuple extension holding a tuple extension ... ``depth`` deep (each a nested msgpack call)."""
    inner = msgpack.packb([])
    for _ in range(depth):
        inner = msgpack.packb([msgpack.ExtType(1, inner)])
    return msgpack.packb(["k", {"a": msgpack.ExtType(1, inner)}])


CASES["ext_nested_10000"] = _tuples_nested(10_000)

CHILD = textwrap.dedent(
    """
    import json, os, resource, struct, sys, zlib
    resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))
    import eventlog
    from eventlog._frame import pack_single, SEG_HEADER_SIZE, FRAME_HEADER_SIZE
    from eventlog.errors import CorruptionError

    def run(path, payload, hostile_len=None):
        seg = os.path.join(path, "00000000000000000001.seg")
        off = os.path.getsize(seg)
        frame = bytearray(pack_single(payload, 3, 10, bytes(16)))
        if hostile_len is not None:
            struct.pack_into("<I", frame, 0, hostile_len)
            struct.pack_into("<I", frame, 44, zlib.crc32(bytes(frame[:44])))
        with open(seg, "ab") as f:
            f.write(frame)
        idx = os.path.join(path, "00000000000000000001.idx")
        try:
            with eventlog.open_log(path) as log:
                recs = list(log.read())
            return {"ok": True, "n": len(recs), "off": off, "size": os.path.getsize(seg),
                    "torn": sorted(n for n in os.listdir(path) if ".torn-" in n)}
        except CorruptionError as err:
            return {"ok": False, "type": type(err).__name__, "segment": os.path.basename(err.segment),
                    "offset": err.offset, "seq": err.seq, "off": off, "msg": str(err)}

    with open(sys.argv[1]) as f:
        cases = json.load(f)
    out = []
    for path, payload_file, hl in cases:
        with open(payload_file, "rb") as f:
            out.append(run(path, f.read(), hl))
    print(json.dumps(out))
    """
)


def _base_log(path: Path) -> None:
    from eventlog import open_log

    with open_log(path) as log:
        log.append("a", {"x": 1}, ts=1)
        log.append("b", {"x": 2}, ts=2)


def _run_child(tmp: Path, cases: list[tuple[Path, bytes, int | None]]) -> list[dict]:
    """Run every case in one child process with RLIMIT_AS = 512 MiB and a timeout."""
    spec = []
    for i, (path, payload, hostile_len) in enumerate(cases):
        pfile = tmp / f"payload{i}.bin"
        pfile.write_bytes(payload)
        spec.append((str(path), str(pfile), hostile_len))
    spec_file = tmp / "cases.json"
    spec_file.write_text(json.dumps(spec))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(spec_file)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_hostile_payloads_in_valid_frames(tmp_path: Path) -> None:
    """Every hostile payload gives a RecordDecodeError at the right frame, in bounded memory and time."""
    cases = []
    for name, payload in CASES.items():
        _base_log(tmp_path / name)
        cases.append((tmp_path / name, payload, None))
    results = _run_child(tmp_path, cases)
    assert len(results) == len(CASES)
    for name, res in zip(CASES, results, strict=True):
        assert not res["ok"], f"{name}: hostile payload was accepted"
        assert res["type"] == "RecordDecodeError", (name, res)
        assert res["segment"] == "00000000000000000001.seg", (name, res)
        assert res["offset"] == res["off"] and res["seq"] == 3, (name, res)


@pytest.mark.parametrize("hostile_len", [2**32 - 1, 2**26])
def test_impossible_length_is_corruption(tmp_path: Path, hostile_len: int) -> None:
    """A frame len beyond the record limit is corruption, decided before any allocation."""
    _base_log(tmp_path / "log")
    (res,) = _run_child(tmp_path, [(tmp_path / "log", msgpack.packb(["k", {}]), hostile_len)])
    assert not res["ok"] and res["type"] == "CorruptionError", res
    assert res["offset"] == res["off"] and res["seq"] == 3


def test_length_past_end_of_file_is_a_torn_tail(tmp_path: Path) -> None:
    """A checksummed header whose frame runs past EOF is a torn write: truncated, backed up, no allocation."""
    _base_log(tmp_path / "log")
    (res,) = _run_child(tmp_path, [(tmp_path / "log", msgpack.packb(["k", {}]), 10_000_000)])
    assert res["ok"], res
    assert res["n"] == 2 and res["size"] == res["off"]
    assert res["torn"] == [f"00000000000000000001.seg.torn-{res['off']}"]
