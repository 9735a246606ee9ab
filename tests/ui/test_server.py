"""The HTTP server: read-only, local by default, a token elsewhere, strict headers, live events."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from replay_tools.ui.errors import PortInUseError
from replay_tools.ui.explorer import Explorer
from replay_tools.ui.server import UiServer, is_loopback


@pytest.fixture
def server(demo_job: Any) -> Iterator[UiServer]:
    ex = Explorer(demo_job)
    ex.start(follow=False, verify=False)
    srv = UiServer(ex, "127.0.0.1", 0)
    srv.start_in_thread()
    try:
        yield srv
    finally:
        srv.shutdown()
        ex.stop()


def get(srv: UiServer, path: str, *, method: str = "GET", host: str | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    hdrs = dict(headers or {})
    conn.putrequest(method, path, skip_host=True)
    conn.putheader("Host", host if host is not None else f"127.0.0.1:{srv.port}")
    for k, v in hdrs.items():
        conn.putheader(k, v)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


def test_page_static_and_api(server: UiServer) -> None:
    """The page, its script and style, and the JSON API are served with strict headers."""
    status, headers, body = get(server, "/")
    assert status == 200 and b"<script src=\"/static/app.js\">" in body
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff" and headers["cache-control"] == "no-store"
    for name in ("app.js", "app.css"):
        assert get(server, f"/static/{name}")[0] == 200
    status, _h, body = get(server, "/api/meta")
    assert status == 200 and json.loads(body)["head"] > 0


def test_unknown_paths_and_traversal_are_404(server: UiServer) -> None:
    """Only the listed static files exist; no path reaches the file system."""
    for path in ("/static/../server.py", "/static/%2e%2e/server.py", "/etc/passwd", "/api/nothing", "/static/"):
        assert get(server, path)[0] == 404, path


def test_read_only(server: UiServer) -> None:
    """POST, PUT, DELETE and PATCH are refused with 405."""
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, headers, _b = get(server, "/api/meta", method=method)
        assert status == 405 and headers["allow"] == "GET, HEAD"


def test_foreign_host_header_is_refused(server: UiServer) -> None:
    """A request naming another host (DNS rebinding) is refused; localhost is fine."""
    assert get(server, "/api/meta", host="evil.example:80")[0] == 403
    assert get(server, "/api/meta", host=f"evil.example:{server.port}")[0] == 403
    assert get(server, "/api/meta", host=f"localhost:{server.port}")[0] == 200


def test_bad_parameter_is_400_with_its_name(server: UiServer) -> None:
    """A bad parameter gets HTTP 400 and a one-line message naming it."""
    status, _h, body = get(server, "/api/window?v=abc")
    assert status == 400 and json.loads(body)["param"] == "v"
    status, _h, body = get(server, "/api/bisect?where=status%20%3D%3D")
    assert status == 400 and "column" in json.loads(body)["error"]


def test_token_required_beyond_loopback(demo_job: Any) -> None:
    """Bound to a non-loopback address, every request needs the token (header, query or cookie)."""
    ex = Explorer(demo_job)
    ex.index.scan()
    srv = UiServer(ex, "0.0.0.0", 0)
    srv.start_in_thread()
    try:
        assert srv.token and srv.token in srv.url
        assert get(srv, "/api/meta")[0] == 403
        assert get(srv, "/api/meta?token=wrong")[0] == 403
        assert get(srv, f"/api/meta?token={srv.token}")[0] == 200
        assert get(srv, "/api/meta", headers={"X-Replay-Token": srv.token})[0] == 200
        status, headers, _b = get(srv, f"/?token={srv.token}")
        assert status == 200 and "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
        assert get(srv, "/api/meta", headers={"Cookie": f"replay_token={srv.token}"})[0] == 200
    finally:
        srv.shutdown()


def test_port_in_use_is_a_clear_error(demo_job: Any) -> None:
    """A taken port is a PortInUseError naming it."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUseError, match=str(port)):
            UiServer(Explorer(demo_job), "127.0.0.1", port)


def test_live_events_report_the_head(server: UiServer) -> None:
    """/api/live streams server-sent events with the head and the index's progress."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/api/live", headers={"Host": f"127.0.0.1:{server.port}"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream"
    lines = []
    done = threading.Event()

    def read() -> None:
        while len(lines) < 2:
            lines.append(resp.fp.readline().decode())
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(10)
    assert lines[0] == "event: head\n"
    payload = json.loads(lines[1].removeprefix("data: "))
    assert payload["head"] == server.explorer.head
    conn.close()


def test_is_loopback() -> None:
    """Loopback addresses and localhost, nothing else."""
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.5.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("example.com")


def _store(tmp_path: Any, jobs: int = 2) -> tuple[str, list[str]]:
    from routilux.job_store import JobStore

    path = str(tmp_path / "store")
    store = JobStore(path)
    ids = []
    for n in range(jobs):
        job = store.create(flow_id="batch")
        job.status = "running"
        job.update_shared_data("n", n)
        job.status = "completed"
        ids.append(job.job_id)
        job.close()
    return path, ids


def test_job_store_lists_and_serves_each_job(tmp_path: Any) -> None:
    """On a job store: /api/jobs lists the jobs; every API request names one of them, nothing else."""
    from replay_tools.ui.catalog import Catalog

    path, ids = _store(tmp_path)
    catalog = Catalog(path, verify=False, follow=False)
    srv = UiServer(catalog, "127.0.0.1", 0)
    srv.start_in_thread()
    try:
        status, _h, body = get(srv, "/api/jobs")
        assert status == 200 and sorted(j["job_id"] for j in json.loads(body)["jobs"]) == sorted(ids)
        status, _h, body = get(srv, "/api/meta")
        assert status == 400 and json.loads(body)["param"] == "job"
        for job_id in ids:
            status, _h, body = get(srv, f"/api/meta?job={job_id}")
            assert status == 200 and json.loads(body)["job_id"] == job_id
        for bad in ("..%2F..%2Fetc", "nope", "%2Ftmp"):
            status, _h, body = get(srv, f"/api/meta?job={bad}")
            assert status == 400 and "no job" in json.loads(body)["error"]
        assert get(srv, "/api/nothing?job=x")[0] == 404
    finally:
        srv.shutdown()
        catalog.stop()


def test_single_job_server_has_no_job_list(server: UiServer) -> None:
    """/api/jobs exists only for a store."""
    assert get(server, "/api/jobs")[0] == 404


def test_too_many_parameters_is_400(server: UiServer) -> None:
    """A query with too many fields is refused, not a crash."""
    query = "&".join(f"p{i}=1" for i in range(100))
    assert get(server, f"/api/meta?{query}")[0] == 400
