"""Shared test configuration: hypothesis profiles and the random seed.

* ``HYPOTHESIS_PROFILE``: ``ci`` (fast, the default under ``CI=true``), ``dev`` (the
  default otherwise) or ``long`` (a thorough local run).
* ``EVENTLOG_TEST_SEED``: the seed of every randomised test that does not use
  hypothesis (kill points, bit flips, ...). Printed in the report when a test fails.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=False
)
settings.register_profile("dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

SEED = int(os.environ.get("EVENTLOG_TEST_SEED", "20261128"))


@pytest.fixture
def seed() -> int:
    """The seed for this run's randomised tests (from ``EVENTLOG_TEST_SEED``)."""
    return SEED


@pytest.fixture
def rng(seed: int) -> random.Random:
    """A ``random.Random`` seeded from ``EVENTLOG_TEST_SEED``."""
    return random.Random(seed)


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL (``EVENTLOG_PG_URL``) whose search_path is a new, empty schema, dropped afterwards.

    Skips the test when ``EVENTLOG_PG_URL`` is not set (``.ci/run`` starts a throw-away server).
    """
    url = os.environ.get("EVENTLOG_PG_URL", "")
    if not url:
        pytest.skip("set EVENTLOG_PG_URL=postgresql://... to run the PostgreSQL tests; .ci/run starts a "
                    "throw-away server")
    import psycopg

    name = f"evtest_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    sep = "&" if "?" in url else "?"
    yield f"{url}{sep}options=-csearch_path%3D{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {name} CASCADE")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        report.sections.append(
            ("random seed", f"EVENTLOG_TEST_SEED={SEED} (rerun with this value to reproduce)")
        )


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    """Summarise skipped tests by reason: one line per reason with a count.

    ``-ra`` printed one line per skipped test (about 60 PostgreSQL tests without a
    server); this keeps every reason visible without the noise. ``-rs`` still lists
    each skip when wanted.
    """
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped or "s" in (config.option.reportchars or "").replace("a", ""):
        return
    reasons: dict[str, int] = {}
    for report in skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    terminalreporter.section("skipped tests, by reason", sep="-")
    for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
        terminalreporter.line(f"{count:4d} skipped: {reason}")
