"""`routilux-replay ui` and `routilux-replay html` from the command line."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from replay_tools.cli import cli


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def embedded(html_text: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="embedded-data">(.*?)</script>', html_text, re.S)
    assert m is not None
    return json.loads(m.group(1))  # type: ignore[no-any-return]


def test_help_lists_both_commands() -> None:
    """Both commands are registered and documented."""
    out = run("--help").output
    assert "ui " in out and "html " in out
    assert "--no-browser" in run("ui", "--help").output
    assert "--max-events" in run("html", "--help").output


@pytest.mark.parametrize("command", ["ui", "html"])
def test_missing_and_not_a_job(command: str, tmp_path: Path) -> None:
    """No such path: exit 3; not a job log: exit 4; one line each, no traceback."""
    extra = ["-o", str(tmp_path / "x.html")] if command == "html" else ["--no-browser"]
    result = run(command, str(tmp_path / "nope"), *extra)
    assert result.exit_code == 3 and "routilux-replay: error:" in result.stderr and "Traceback" not in result.output
    junk = tmp_path / "junk.txt"
    junk.write_text("hello")
    result = run(command, str(junk), *extra)
    assert result.exit_code == 4 and "not a saved job file" in result.stderr


def test_damaged_job_is_exit_5(demo_job_dir: str, tmp_path: Path) -> None:
    """A log damaged mid-way cannot be exported: exit 5 naming the damage; nothing is written."""
    path = tmp_path / "job"
    shutil.copytree(demo_job_dir, path)
    seg = next(p for p in path.iterdir() if p.suffix == ".seg")
    raw = bytearray(seg.read_bytes())
    at = raw.index(b"operator check")
    raw[at] ^= 0x20
    seg.write_bytes(bytes(raw))
    out = tmp_path / "run.html"
    result = run("html", str(path), "-o", str(out))
    assert result.exit_code == 5 and "damaged" in result.stderr
    assert not out.exists() and not Path(str(out) + ".tmp").exists()


def test_html_is_self_contained(demo_job_dir: str, tmp_path: Path) -> None:
    """One file: inline script allowed by its hash, no network, the job's data embedded."""
    out = tmp_path / "run.html"
    result = run("html", demo_job_dir, "-o", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert "/static/" not in text and not re.search(r"""(src|href)=["'](?!data:)""", text.replace('href="data:,"', ""))
    assert "connect-src 'none'" in text
    script = re.search(r"<script>(.*)</script>", text, re.S)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in text
    data = embedded(text)
    assert data["meta"]["mode"] == "file" and data["meta"]["left_out"] is None
    assert len(data["events"]) == data["meta"]["head"] and data["verify"]["ok"] is True


def test_html_says_what_it_left_out(demo_job_dir: str, tmp_path: Path) -> None:
    """--max-events keeps the last versions; the page and the command say what was left out."""
    out = tmp_path / "cut.html"
    result = run("html", demo_job_dir, "-o", str(out), "--max-events", "10")
    assert result.exit_code == 0
    data = embedded(out.read_text(encoding="utf-8"))
    head = data["meta"]["indexed"]
    assert data["meta"]["range"] == [head - 9, head]
    assert f"1..{head - 10} are left out" in data["meta"]["left_out"] and "left out" in result.stderr
    result = run("html", demo_job_dir, "-o", str(out), "--from", "5", "--to", "12")
    assert embedded(out.read_text(encoding="utf-8"))["meta"]["range"] == [5, 12]
    result = run("html", demo_job_dir, "-o", str(out), "--from", "30", "--to", "12")
    assert result.exit_code == 2 and "--from" in result.stderr


def test_ui_serves_until_stopped(demo_job_dir: str) -> None:
    """`ui --no-browser --port 0` prints the address; the API answers; Ctrl-C stops it."""
    with subprocess.Popen([sys.executable, "-m", "replay_tools", "ui", demo_job_dir, "--no-browser", "--port", "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}) as proc:
        _serve_and_stop(proc)
    assert proc.returncode == 0


def _serve_and_stop(proc: subprocess.Popen[str]) -> None:
    try:
        assert proc.stdout is not None
        url = None
        for _ in range(5):
            line = proc.stdout.readline()
            m = re.search(r"open (http://127\.0\.0\.1:\d+/)", line)
            if m:
                url = m.group(1)
                break
        assert url is not None
        with urllib.request.urlopen(url + "api/meta", timeout=10) as resp:
            assert json.loads(resp.read())["flow_id"] == "order-batch"
    finally:
        proc.send_signal(2)  # SIGINT, as Ctrl-C
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
