"""Which tests may run side by side under pytest-xdist, and in which order they start.

scripts/test runs ``-n 2 --dist loadgroup``. The tests of one group run one after another
on one worker, while the other worker runs the rest:

- "redis": every test that talks to Redis, the servers' clusters included, one at a time
  (the one that counts Redis' commands has a redis-server of its own: tests/own_redis.py).
- "servers", "browser": real servers under load, and Chromium, one test at a time.
- each MCP module starts its servers once, on one worker.
- "packaging": one ``python -m build`` in the checkout at a time.

pytest-xdist's own ``loadgroup`` reads ``xdist_group`` marks from node ids it rewrites,
which pytest 9 no longer allows (pytest-dev/pytest-xdist#1386: the marks are silently
ignored). So the groups go by node id here, and :class:`GroupScheduling` hands them out
through xdist's public ``pytest_xdist_make_scheduler`` hook and scheduler protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # (pytest-xdist is only needed to run the tests in parallel)
    from xdist.workermanage import WorkerController

_GROUPS = {
    "tests/servers/test_scale_out.py": "redis",
    "tests/test_ratelimit.py": "redis",
    "tests/test_quota_redis.py": "redis",
    "tests/servers/test_quota_servers.py": "redis",
    "tests/servers/test_redis_outage.py": "redis",
    "tests/servers/test_dropped_connections.py": "redis",
    "tests/servers/": "servers",
    "tests/browser/": "browser",
    "tests/mcp/": "",  # "" = the module
    "tests/test_packaging.py": "packaging",
    "tests/pages/test_scale.py": "",  # 50,000 keys, filled once for the module
}

# Roughly how long a test takes (seconds, on a busy 2-core machine), by node id prefix;
# the first match wins, anything else counts _QUICK. Only the order of the work depends
# on these: the longest scopes (a group's tests add up; any other test is a scope of its
# own) start first and the short ones fill in at the end, instead of one worker waiting
# while the other runs a long test it got last.
_SECONDS = {
    "tests/test_fuzz.py::test_a_few_thousand": 30.0,
    "tests/test_openapi_schemathesis.py": 25.0,
    "tests/servers/test_server_models.py": 12.0,
    "tests/servers/": 10.0,
    "tests/test_docs_migrations.py": 8.0,
    "tests/pages/test_scale.py": 6.0,
    "tests/test_cli.py::test_the_real_flask_command": 8.0,
    "tests/browser/": 5.0,
    "tests/pages/test_snippets_run.py::test_go": 6.0,  # go run compiles first
    "tests/mcp/": 1.0,
}
_QUICK = 0.3


def xdist_group(nodeid: str) -> str | None:
    """The group of the test *nodeid*, or None when it may run beside any other."""
    path = nodeid.split("::", 1)[0]
    for prefix, group in _GROUPS.items():
        if path.startswith(prefix):
            return group or path
    return None


def scope_of(nodeid: str) -> str:
    """The unit of work *nodeid* is handed out in: its group, or the test alone."""
    return xdist_group(nodeid) or nodeid


def _seconds(nodeid: str) -> float:
    for prefix, seconds in _SECONDS.items():
        if nodeid.startswith(prefix):
            return seconds
    return _QUICK


def longest_first(items: list[pytest.Item]) -> None:
    """Sort *items* (in place) by scope, the longest scope first, keeping each scope's
    tests in their collected order."""
    totals: dict[str, float] = {}
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        scope = scope_of(item.nodeid)
        totals[scope] = totals.get(scope, 0.0) + _seconds(item.nodeid)
        first.setdefault(scope, index)
    order = {id(item): index for index, item in enumerate(items)}
    items.sort(
        key=lambda item: (
            -totals[scope_of(item.nodeid)],
            first[scope_of(item.nodeid)],
            order[id(item)],
        )
    )


WorkUnit = dict[str, bool]  # node id -> done


class GroupScheduling:
    """xdist's scheduler protocol (``xdist.scheduler.protocol.Scheduling``): the scopes
    of :func:`scope_of`, in collection order (:func:`longest_first`), one at a time to
    whichever worker has at most two tests left."""

    def __init__(self, config: pytest.Config, log: Any = None) -> None:
        from xdist.workermanage import parse_tx_spec_config

        self.config = config
        self.log = log if log is not None else (lambda *args: None)
        self.expected_nodes = len(parse_tx_spec_config(config))
        self.collections: dict[WorkerController, list[str]] = {}
        self.assigned: dict[WorkerController, dict[str, WorkUnit]] = {}
        self.queue: dict[str, WorkUnit] | None = None  # scope -> its tests, in order

    @property
    def nodes(self) -> list[WorkerController]:
        return list(self.assigned)

    @property
    def collection_is_completed(self) -> bool:
        return len(self.collections) >= self.expected_nodes

    @property
    def tests_finished(self) -> bool:
        if not self.collection_is_completed or self.queue is None or self.queue:
            return False
        return all(_pending(units) < 2 for units in self.assigned.values())

    @property
    def has_pending(self) -> bool:
        return bool(self.queue) or any(_pending(units) for units in self.assigned.values())

    def add_node(self, node: WorkerController) -> None:
        self.assigned[node] = {}

    def add_node_collection(self, node: WorkerController, collection: Sequence[str]) -> None:
        self.collections[node] = list(collection)

    def remove_node(self, node: WorkerController) -> str | None:
        """A worker went away: its unfinished tests go back to the queue; the one it was
        running is named as the crashed item."""
        units = self.assigned.pop(node)
        unfinished = {scope: unit for scope, unit in units.items() if not all(unit.values())}
        if not unfinished:
            return None
        crashed = next(
            nodeid for unit in unfinished.values() for nodeid, done in unit.items() if not done
        )
        assert self.queue is not None
        self.queue = {**unfinished, **self.queue}
        for other in self.nodes:
            self._feed(other)
        return crashed

    def mark_test_complete(
        self, node: WorkerController, item_index: int, duration: float = 0
    ) -> None:
        nodeid = self.collections[node][item_index]
        self.assigned[node][scope_of(nodeid)][nodeid] = True
        self._feed(node)

    def mark_test_pending(self, item: str) -> None:
        raise NotImplementedError("GroupScheduling does not re-run tests")

    def remove_pending_tests_from_node(
        self, node: WorkerController, indices: Sequence[int]
    ) -> None:
        raise NotImplementedError("GroupScheduling does not steal work")

    def schedule(self) -> None:
        if self.queue is not None:  # a worker came up late: give it work too
            for node in self.nodes:
                self._feed(node)
            return
        if not self._same_collections():
            self.log("**Different tests collected, aborting run**")
            return
        collection = next(iter(self.collections.values()))
        queue: dict[str, WorkUnit] = {}
        for nodeid in collection:
            queue.setdefault(scope_of(nodeid), {})[nodeid] = False
        self.queue = queue
        for node in self.nodes[len(queue) :]:  # more workers than work
            self.assigned.pop(node)
            node.shutdown()
        for node in self.nodes:
            self._assign(node)
        for node in self.nodes:
            self._feed(node)

    def _feed(self, node: WorkerController) -> None:
        """Give *node* the next scope when it has two tests or fewer left."""
        if node.shutting_down:
            return
        if not self.queue:
            node.shutdown()
            return
        if _pending(self.assigned[node]) <= 2:
            self._assign(node)

    def _assign(self, node: WorkerController) -> None:
        if not self.queue:
            return
        scope = next(iter(self.queue))
        unit = self.queue.pop(scope)
        self.assigned[node][scope] = unit
        collection = self.collections[node]
        node.send_runtest_some(
            [collection.index(nodeid) for nodeid, done in unit.items() if not done]
        )

    def _same_collections(self) -> bool:
        (first_node, first), *others = self.collections.items()
        same = True
        for node, collection in others:
            if collection != first:
                same = False
                message = f"{first_node.gateway.id} and {node.gateway.id} collected different tests"
                self.log(message)
                report = pytest.CollectReport(node.gateway.id, "failed", message, [])
                self.config.hook.pytest_collectreport(report=report)
        return same


def _pending(units: dict[str, WorkUnit]) -> int:
    return sum(not done for unit in units.values() for done in unit.values())
