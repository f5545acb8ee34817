"""
Export rate, measured in a fresh process: ``DevRevHook.iter_sessions`` against a hand-written ``requests`` loop
over the same pages, and the raw round trips of those pages, side by side.

Run by :mod:`bench.export_rate`. For each server (the project's simulator in its own process, and the benchmark
server, whose pages cost it almost nothing) and each round, every contender exports the whole listing once, in
an order rotated from round to round:

- ``devrev_get`` / ``devrev_post``: ``iter_sessions`` without arguments (the GET form), and with a filter and a
  ``created_at`` range (the POST form); all sessions match both.
- ``requests_get`` / ``requests_post``: what a user writes by hand with a plain keep-alive ``requests.Session``
  (the http provider's hook is one): send the same query or the same body, ``response.json()``, yield the
  page's sessions, follow ``next_cursor``.
- ``replay_get`` / ``replay_post``: the very page requests of the hand-written loop (recorded in the warm-up),
  sent on a plain session with the body read but not decoded: the round trips alone (server, loopback,
  ``requests``), the floor under both.

Each contender is built anew for each export (so its first TCP connection is in the figure); the hook's
connection is read before the clock starts. Client CPU is this process's CPU time; server CPU is the server
process's, from its control port.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable, Iterator
from typing import Any

from bench.harness import PLATFORM, TOKEN, VERSION_KEY, control_client, write_result
from bench.simulator_host import LIST_AFTER, LIST_BEFORE

HEADERS = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json", "X-Devrev-Scope": "beta"}
FILTERS = {"is_crash": True}
CONTENDERS = ("devrev_get", "requests_get", "replay_get", "devrev_post", "requests_post", "replay_post")

#: One recorded page request: method, URL, JSON body.
PageRequest = tuple[str, str, dict[str, Any] | None]


def post_body(page_size: int) -> dict[str, Any]:
    """The list body a user writes by hand: the same fields, in the same form, as the hook sends."""
    return {
        "type": "mobile",
        "platform": PLATFORM,
        "version_key": VERSION_KEY,
        "is_crash": True,
        "created_at": {
            "type": "range",
            "after": "2026-11-01T00:00:00.000000Z",
            "before": "2026-12-01T00:00:00.000000Z",
        },
        "limit": page_size,
    }


def hand_written(
    http: Any, base_url: str, form: str, page_size: int, record: list[PageRequest] | None = None
) -> Iterator[dict[str, Any]]:
    """The hand-rolled export: page after page, following ``next_cursor``."""
    url = base_url + "/observability.sessions.list"
    cursor = None
    while True:
        if form == "get":
            params = {"platform": PLATFORM, "version_key": VERSION_KEY, "limit": str(page_size)}
            if cursor:
                params["cursor"] = cursor
            response = http.get(url, params=params, timeout=30)
            if record is not None:
                record.append(("GET", response.url, None))
        else:
            body = post_body(page_size)
            if cursor:
                body["cursor"] = cursor
            response = http.post(url, json=body, timeout=30)
            if record is not None:
                record.append(("POST", url, body))
        response.raise_for_status()
        page = response.json()
        yield from page["sessions"]
        cursor = page.get("next_cursor")
        if not cursor:
            return


def plain_session() -> Any:
    """A keep-alive ``requests.Session`` with the headers DevRev needs."""
    import requests

    http = requests.Session()
    http.headers.update(HEADERS)
    return http


class Exports:
    """Builds each contender's export for one server (``conn_id`` is the hook's connection to it)."""

    def __init__(self, base_url: str, conn_id: str, page_size: int, repeat: int = 1) -> None:
        self.base_url = base_url
        self.conn_id = conn_id
        self.page_size = page_size
        self.repeat = repeat
        self.recorded: dict[str, list[PageRequest]] = {}

    def record(self) -> None:
        """One hand-written export per form, keeping its page requests for the replays."""
        for form in ("get", "post"):
            pages: list[PageRequest] = []
            http = plain_session()
            sum(1 for _ in hand_written(http, self.base_url, form, self.page_size, pages))
            http.close()
            self.recorded[form] = pages

    def prepare(self, name: str) -> tuple[Callable[[], int], Callable[[], None]]:
        """
        ``(export, close)`` for contender ``name``, built outside the clock; ``export`` returns how many sessions
        it yielded (a replay, which decodes nothing: how many pages it sent).
        """
        kind, form = name.split("_")
        if kind == "devrev":
            from airflow_provider_devrev.hooks.devrev import DevRevHook

            hook = DevRevHook(self.conn_id)
            hook.settings  # noqa: B018 - the connection lookup is Airflow's, not the export's
            if form == "get":
                return lambda: count(hook.iter_sessions(PLATFORM, VERSION_KEY, page_size=self.page_size)), hook.close
            return lambda: count(
                hook.iter_sessions(
                    PLATFORM,
                    VERSION_KEY,
                    filters=FILTERS,
                    created_after=LIST_AFTER,
                    created_before=LIST_BEFORE,
                    page_size=self.page_size,
                )
            ), hook.close
        http = plain_session()
        if kind == "requests":
            return lambda: count(hand_written(http, self.base_url, form, self.page_size)), http.close
        pages = self.recorded[form]

        def replay() -> int:
            for method, url, body in pages:
                http.request(method, url, json=body, timeout=30).content  # noqa: B018 - read, not decoded
            return len(pages)

        return replay, http.close


def count(sessions: Iterator[dict[str, Any]]) -> int:
    """Consume an export the way a task does (one session at a time), counting."""
    total = 0
    for _ in sessions:
        total += 1
    return total


def check_bodies(page_size: int) -> None:
    """The hand-written body is the hook's, field for field (else the comparison would not be fair)."""
    from airflow_provider_devrev.listing import session_query

    query = session_query(
        PLATFORM,
        VERSION_KEY,
        filters=FILTERS,
        created_after=LIST_AFTER,
        created_before=LIST_BEFORE,
        page_size=page_size,
    )
    ours = query.page_request().body
    if ours != post_body(page_size):
        raise SystemExit(f"the hand-written body differs from the hook's: {post_body(page_size)} != {ours}")


def measure_one(name: str, exports: Exports, control_port: int, expected: int) -> dict[str, Any]:
    """
    One contender's export (``exports.repeat`` of them back to back, each by a contender built anew, where one
    export is short enough for a scheduling hiccup to matter): wall time, client and server CPU, requests; all
    per export.
    """
    server = control_client(control_port)
    prepared = [exports.prepare(name) for _ in range(exports.repeat)]
    server.reset()
    before = server.stats()
    gc.collect()
    cpu_started, started = time.process_time(), time.perf_counter()
    exported = [export() for export, _ in prepared]
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    after = server.stats()
    for _, close in prepared:
        close()
    if not name.startswith("replay") and set(exported) != {expected}:
        raise SystemExit(f"{name} exported {exported} sessions, expected {expected}")
    return {
        "contender": name,
        "sessions": expected,
        "wall": wall / exports.repeat,
        "cpu": cpu / exports.repeat,
        "server_cpu": (after["cpu"] - before["cpu"]) / exports.repeat,
        "requests": after["requests"] // exports.repeat,
        "repeat": exports.repeat,
    }


def measure(
    servers: dict[str, tuple[Exports, int]], rounds: int, expected: int, names: tuple[str, ...], warm_up: str
) -> list[dict[str, list[dict[str, Any]]]]:
    """
    ``rounds`` rounds: in each, every server, and for each every contender (order rotated per round); first, one
    untimed export of each contender from the ``warm_up`` server (imports, code paths; the same on any server).
    """
    for exports, _ in servers.values():
        exports.record()
    exports, control_port = servers[warm_up]
    for name in names:
        measure_one(name, exports, control_port, expected)
    results = []
    for index in range(rounds):
        order = names[index % len(names) :] + names[: index % len(names)]
        results.append(
            {
                server: [measure_one(name, exports, control_port, expected) for name in order]
                for server, (exports, control_port) in servers.items()
            }
        )
        print(f"round {index + 1}/{rounds} done", flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Export rate, measured in this process.")
    parser.add_argument("--sessions", type=int, required=True, help="sessions every export must return")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument(
        "--server",
        action="append",
        required=True,
        help="NAME=CONN_ID,BASE_URL,CONTROL_PORT,REPEAT (repeatable): a server, the hook's connection to it, and "
        "how many exports make one measurement",
    )
    parser.add_argument("--warm-up-server", required=True, help="the NAME of the server to warm up on")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    import airflow.sdk  # noqa: F401  (Airflow's set-up is not part of any export)

    check_bodies(args.page_size)
    servers: dict[str, tuple[Exports, int]] = {}
    for spec in args.server:
        name, _, rest = spec.partition("=")
        conn_id, base_url, control_port, repeat = rest.split(",")
        servers[name] = (Exports(base_url, conn_id, args.page_size, int(repeat)), int(control_port))
    names = tuple(args.contenders.split(","))
    write_result(args.out, {"rounds": measure(servers, args.rounds, args.sessions, names, args.warm_up_server)})


if __name__ == "__main__":
    main()
