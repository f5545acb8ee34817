"""
The secret sweep (issue 26): generated secrets, stored where a deployment stores them, driven through every
error path of both transports and both triggers; no piece of one may get out.

A secret of 8 to 200 characters drawn from every printable character (``/ @ : % # ? & = +``, spaces,
non-ASCII) is the connection's token, or the password of its proxy: the ``proxy`` extra, or ``HTTPS_PROXY``,
``HTTP_PROXY``, ``ALL_PROXY`` (either case) in the environment, percent-encoded in the URL or pasted as it
is. Each example then meets one failure: DevRev answering 401, 403, 404, 429 or 500 with its own error body
(the simulator's faults), or with an HTML page quoting the request's headers back (a gateway, or the proxy
itself, answering); the connection refused; the proxy refusing with 407, closing the connection, or down;
the proxy URL invalid (holding the secret); a token the HTTP library would refuse (a newline inside: the
provider refuses it first), and a proxy password requests cannot put in a header (beyond Latin-1, which it
refuses). The drivers: the sync hook (requests), the async hook (aiohttp), :class:`DevRevSessionTrigger`,
:class:`DevRevNewSessionsTrigger`. Each run tries the same examples (``tests/properties.py``): the explicit
ones first (every fault and place, 200-character secrets, an echoed token 6 characters before the excerpt's
cut, at it and across it), then 300 generated.

A piece found is checked against a control run: the same scenario with :func:`~tests.reliability.sweep.twin`
of the secret (its letters, digits and symbols replaced by others of their kind, the characters that steer
parsing kept), rather than one fixed control secret, so that the control takes the same path (a token
refused for its space, a proxy URL refused for its '/') and shows the same common text.

Searched (see :mod:`tests.reliability.sweep` for how): every log record of every logger at DEBUG (``caplog``:
its formatted text, tracebacks included) and the console (Airflow 3's structlog writes there); the exception
raised, its ``str``, ``repr``, arguments, ``__cause__`` and ``__context__``, recursively; the ``repr`` of the
hook, its settings and the trigger, and ``trigger.serialize()``; each trigger event as Airflow stores it in
the metadata DB (``BaseSerialization.serialize`` then ``json.dumps``); the metrics, read back from a StatsD
listener. No ``dag.test()`` here, so Airflow 3.0.6's traceback locals (printed unmasked by its ``dag.test``,
an Airflow fault, xfail in ``test_token_secrecy.py``) are not a channel of this sweep.

Servers, all on 127.0.0.1 and shared by a module: the simulator (HTTP and HTTPS), an echoing server, a raw
forward proxy in this process (so each example can give it another password: ``tests/network/forward_proxy``
runs in its own process with one), a closed port, a StatsD socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import strategies as st

from airflow_provider_devrev import metrics
from airflow_provider_devrev.exceptions import BODY_EXCERPT_CHARS, DevRevError
from airflow_provider_devrev.hooks.devrev import DevRevHook
from airflow_provider_devrev.testing import DevRevSimulator
from airflow_provider_devrev.triggers.devrev import DevRevNewSessionsTrigger, DevRevSessionTrigger
from tests.properties import sized
from tests.reliability.sweep import exception_texts, hits, needles, secrets_forgotten_afterwards, twin
from tests.reliability.sweep_servers import EchoServer, RawProxy, closed_port

CONN_ID = "sweep"
CONN_ENV = "AIRFLOW_CONN_SWEEP"
NETWORK_ENV = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")
USER = "sweeper"
#: The other secret of an example (the token when the proxy's password is swept, and the other way round).
OTHER_TOKEN = "sweep-token-0f6a2c94e1d7"
OTHER_PASSWORD = "sweep-proxy-pw-5b8e13"
VERSION_KEY = "com.example.sweep@1.0"
SESSION_ID = "sweep-session-1"
#: Seconds each request may take: every case here ends at once, this only bounds a bug.
TIMEOUT = 10.0
HOOK_OPTIONS = {"max_retries": 1, "timeout": TIMEOUT}

PROXY_PLACES = ["extra", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
STATUSES = [401, 403, 404, 429, 500]
FAULTS = [
    *(f"devrev-{status}" for status in STATUSES),
    *(f"echo-{status}" for status in STATUSES),
    "refused",
    "proxy-407",
    "proxy-close",
    "proxy-down",
    "invalid-proxy",
    "bad-header",
]
PROXY_FAULTS = {"proxy-407", "proxy-close", "proxy-down", "invalid-proxy"}
#: Proxy URLs that cannot be used, each holding the password: another scheme, no host, no numeric port.
INVALID_PROXIES = {
    "socks5": "socks5://{user}:{password}@127.0.0.1:1080",
    "no host": "http://{user}:{password}@:3128",
    "bad port": "http://{user}:{password}@127.0.0.1:proxy",
}
DEVREV_BODIES = {
    401: ("revoked", {}),
    403: ("status", {"status": 403, "body": {"type": "forbidden", "message": "not allowed"}}),
    404: ("status", {"status": 404, "body": {"type": "not_found", "message": "no such session"}}),
    429: ("rate_limit", {"retry_after": 0}),
    500: ("server_error", {"status": 500}),
}


@dataclass(frozen=True)
class Scenario:
    """Where the secret is stored, which way the request goes, and what fails."""

    place: str  # "token", "extra" or an environment variable
    fault: str
    scheme: str  # of the base URL
    encoded: bool  # the proxy password percent-encoded in its URL
    via_proxy: bool  # for a token: through a proxy (with another password) or not
    invalid: str  # which INVALID_PROXIES form, for "invalid-proxy"
    pad: int  # characters an echoed page has before the headers it quotes: moves them across the cut

    @property
    def uses_proxy(self) -> bool:
        return self.place != "token" or self.via_proxy or self.fault in PROXY_FAULTS


def scenarios() -> st.SearchStrategy[Scenario]:
    def for_place(place: str) -> st.SearchStrategy[Scenario]:
        scheme = "https" if place.lower() == "https_proxy" else "http" if place.lower() == "http_proxy" else None
        return st.builds(
            Scenario,
            place=st.just(place),
            fault=st.sampled_from(FAULTS if place == "token" else [f for f in FAULTS if f != "bad-header"]),
            scheme=st.just(scheme) if scheme else st.sampled_from(["http", "https"]),
            encoded=st.booleans(),
            via_proxy=st.booleans(),
            invalid=st.sampled_from(sorted(INVALID_PROXIES)),
            pad=st.integers(0, 220),
        )

    # Half the examples sweep the token, half a proxy password.
    return st.one_of(st.just("token"), st.sampled_from(PROXY_PLACES)).flatmap(for_place)


#: Every printable character, the ones URLs and tokens give a meaning to weighted in.
SECRETS = st.text(
    st.one_of(
        st.sampled_from("/@:%#?&=+ "),
        st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")).filter(str.isprintable),
    ),
    min_size=8,
    max_size=200,
)


#: Secrets for the examples every run tries first, so each fault and place is met whatever is generated:
#: 200 characters (longer than any cut), one a token can be (printable ASCII, no space), one with every kind
#: of character, one a proxy URL can hold unencoded (no '/', '?' or '#').
TOKEN_LIKE = ("tk/@:%&=+-" + "".join(chr(c) for c in range(0x21, 0x7F)) * 3)[:200]
ANY_CHARACTER = ("p/@:%#?&=+ é中🙂" + "".join(chr(c) for c in range(0x20, 0x7F)) + "ßøæ€—") * 2
PASTABLE = ("pw@:%&=+ é中" + "".join(chr(c) for c in range(0x30, 0x7B) if chr(c) != "?") * 3)[:200]
#: Pads that put the token of an echoed page ("<pre>Authorization: Bearer <token>") 6 characters before
#: the excerpt's cut, at it, and across it.
CUT_PADS = [BODY_EXCERPT_CHARS - 1 - 27 - 6, BODY_EXCERPT_CHARS - 1 - 27, 100]


def explicit_examples() -> list[tuple[Scenario, str]]:
    chosen = []
    for number, fault in enumerate(FAULTS):
        pad = CUT_PADS[number % len(CUT_PADS)]
        chosen.append(
            (Scenario("token", fault, ["http", "https"][number % 2], False, number % 3 == 0, "socks5", pad), TOKEN_LIKE)
        )
        if fault == "bad-header":
            continue
        place = PROXY_PLACES[number % len(PROXY_PLACES)]
        scheme = "https" if place.lower() == "https_proxy" else "http" if place.lower() == "http_proxy" else "https"
        invalid = sorted(INVALID_PROXIES)[number % len(INVALID_PROXIES)]
        chosen.append((Scenario(place, fault, scheme, True, True, invalid, pad), ANY_CHARACTER[:200]))
        chosen.append((Scenario(place, fault, scheme, False, True, invalid, pad), PASTABLE))
    return chosen


def with_explicit_examples(test):
    for scenario, secret in explicit_examples():
        test = example(scenario=scenario, secret=secret)(test)
    return test


@dataclass
class Servers:
    sim: DevRevSimulator
    tls_sim: DevRevSimulator
    echo: EchoServer
    proxy: RawProxy
    closed: int
    statsd: socket.socket


@pytest.fixture(scope="module")
def servers():
    from tests.test_metrics import _use_configured_backend

    patch = pytest.MonkeyPatch()
    statsd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    statsd.bind(("127.0.0.1", 0))
    statsd.setblocking(False)
    for name, value in {"ON": "True", "HOST": "127.0.0.1", "PORT": str(statsd.getsockname()[1])}.items():
        patch.setenv(f"AIRFLOW__METRICS__STATSD_{name}", value)
    metrics._enabled.cache_clear()
    reset = _use_configured_backend(patch)
    with DevRevSimulator(seed_data=False) as sim, DevRevSimulator(seed_data=False, tls=True) as tls_sim:
        echo, proxy = EchoServer().start(), RawProxy().start()
        try:
            yield Servers(sim, tls_sim, echo, proxy, closed_port(), statsd)
        finally:
            echo.stop()
            proxy.stop()
            statsd.close()
            reset()
            patch.undo()
            metrics._enabled.cache_clear()


@dataclass
class Outcome:
    """What one example left behind, as the texts to search."""

    error: BaseException | None = None
    events: list[Any] = field(default_factory=list)
    reprs: list[str] = field(default_factory=list)


def arrange(scenario: Scenario, secret: str, srv: Servers, patch: pytest.MonkeyPatch) -> None:
    """Set up the connection, the environment and the servers for one example."""
    token, password = OTHER_TOKEN, OTHER_PASSWORD
    if scenario.place == "token":
        middle = len(secret) // 2
        token = secret[:middle] + "\n" + secret[middle:] if scenario.fault == "bad-header" else secret
    else:
        password = secret
    sim = srv.tls_sim if scenario.scheme == "https" else srv.sim
    for simulator in (srv.sim, srv.tls_sim):
        simulator.clear_faults()
        simulator.clear_requests()
    srv.proxy.mode = "forward"
    srv.proxy.prefix = srv.echo.prefix = "p" * scenario.pad
    base = sim.url
    kind, _, status = scenario.fault.partition("-")
    if kind == "devrev":
        fault, params = DEVREV_BODIES[int(status)]
        sim.add_fault(fault, times=None, **params)
    elif kind == "echo" and scenario.uses_proxy:
        srv.proxy.mode, srv.proxy.status = "echo", int(status)
    elif kind == "echo":
        srv.echo.status = int(status)
        base = f"{scenario.scheme}://127.0.0.1:{srv.echo.port}"
    elif scenario.fault == "refused":
        base = f"{scenario.scheme}://127.0.0.1:{srv.closed}"
    elif scenario.fault == "proxy-407":
        srv.proxy.mode, srv.proxy.status = "echo", 407
    elif scenario.fault == "proxy-close":
        srv.proxy.mode = "close"
    extra: dict[str, Any] = {"ca_bundle": srv.tls_sim.ca_file} if scenario.scheme == "https" else {}
    if scenario.uses_proxy:
        written = quote(password, safe="") if scenario.encoded else password
        port = srv.closed if scenario.fault == "proxy-down" else srv.proxy.port
        proxy_url = f"http://{USER}:{written}@127.0.0.1:{port}"
        if scenario.fault == "invalid-proxy":
            proxy_url = INVALID_PROXIES[scenario.invalid].format(user=USER, password=written)
        if scenario.place in ("token", "extra"):
            extra["proxy"] = proxy_url
        else:
            patch.setenv(scenario.place, proxy_url)
    patch.setenv(CONN_ENV, json.dumps({"conn_type": "devrev", "host": base, "password": token, "extra": extra}))


async def _no_wait(seconds: float) -> None:
    return None


class _PollWait(Exception):
    """Raised by the new-sessions trigger's sleep at its wait for the next poll: the example is over."""


async def _stop_at_poll_wait(seconds: float) -> None:
    # The hook's retry waits are short (it is given the trigger's sleep); the wait for the next poll is not.
    if seconds >= 100:
        raise _PollWait


def drive(driver: str, patch: pytest.MonkeyPatch) -> Outcome:
    """One call (or one trigger run) through ``driver``; whatever it raised or fired."""
    outcome = Outcome()
    if driver in ("requests", "aiohttp"):
        hook = DevRevHook(CONN_ID, sleep=lambda seconds: None, async_sleep=_no_wait, **HOOK_OPTIONS)
        try:
            if driver == "requests":
                hook.get_session("android", SESSION_ID, VERSION_KEY)
            else:
                asyncio.run(hook.aget_session("android", SESSION_ID, VERSION_KEY))
        except Exception as err:
            outcome.error = err
        finally:
            hook.close()
        outcome.reprs = [repr(hook), repr(hook._settings)]
        return outcome
    if driver == "session_trigger":
        patch.setattr(DevRevSessionTrigger, "sleep", staticmethod(_no_wait))
        trigger: Any = DevRevSessionTrigger(
            devrev_conn_id=CONN_ID,
            platform="android",
            session_id=SESSION_ID,
            version_key=VERSION_KEY,
            poll_interval=1,
            end_time=0.0,  # passed: a transient failure ends the wait at once, with its own event
            hook_options=HOOK_OPTIONS,
        )
    else:
        patch.setattr(DevRevNewSessionsTrigger, "sleep", staticmethod(_stop_at_poll_wait))
        trigger = DevRevNewSessionsTrigger(
            platform="android",
            version_key=VERSION_KEY,
            devrev_conn_id=CONN_ID,
            poll_interval=1000,
            hook_options=HOOK_OPTIONS,
        )

    async def run() -> None:
        async for event in trigger.run():
            outcome.events.append(event)
            if driver == "session_trigger":
                return

    with contextlib.suppress(_PollWait):
        asyncio.run(run())
    outcome.reprs = [repr(trigger), json.dumps(trigger.serialize())]
    return outcome


def texts_of(outcome: Outcome, caplog, capsys, console: io.BytesIO, srv: Servers) -> dict[str, str]:
    from airflow.serialization.serialized_objects import BaseSerialization

    printed = capsys.readouterr()
    datagrams = []
    while True:
        try:
            datagrams.append(srv.statsd.recv(65535).decode("utf-8", "replace"))
        except BlockingIOError:
            break
    return {
        "log records": caplog.text + "\n".join(record.getMessage() for record in caplog.records),
        "console": console.getvalue().decode("utf-8", "replace") + printed.out + printed.err,
        "exception and its chain": exception_texts(outcome.error),
        "reprs and trigger arguments": "\n".join(outcome.reprs),
        "trigger events as stored": "\n".join(
            json.dumps(BaseSerialization.serialize(event.payload)) for event in outcome.events
        ),
        "metrics": "\n".join(datagrams),
    }


class Sweep:
    """Runs examples of one driver and keeps what the test asserts on at the end."""

    def __init__(self, driver, srv, caplog, capsys, console) -> None:
        self.driver, self.srv, self.caplog, self.capsys, self.console = driver, srv, caplog, capsys, console
        self.seen: dict[str, set[Any]] = {"place": set(), "fault": set(), "encoded": set(), "scheme": set()}
        self.written: dict[str, int] = {}
        self.examples = self.longest = 0
        self.error_types: set[str | None] = set()

    def run(self, scenario: Scenario, secret: str) -> tuple[dict[str, str], Outcome]:
        self.caplog.clear()
        self.capsys.readouterr()
        self.console.seek(0)
        self.console.truncate()
        with pytest.MonkeyPatch.context() as patch, secrets_forgotten_afterwards():
            for name in NETWORK_ENV:
                patch.delenv(name, raising=False)
                patch.delenv(name.lower(), raising=False)
            arrange(scenario, secret, self.srv, patch)
            outcome = drive(self.driver, patch)
        return texts_of(outcome, self.caplog, self.capsys, self.console, self.srv), outcome

    def example(self, scenario: Scenario, secret: str) -> None:
        texts, outcome = self.run(scenario, secret)
        error, events = outcome.error, outcome.events
        user = USER if scenario.place != "token" else None
        found = hits(needles(secret, user), texts)
        if found:
            # Common text that matches a piece is in the control run too; a leak is not.
            control, _ = self.run(scenario, twin(secret))
            common = hits(dict.fromkeys(found, ""), control)
            found = {needle: where for needle, where in found.items() if needle not in common}
        assert not found, (scenario, secret, found)
        if self.driver in ("requests", "aiohttp"):
            assert isinstance(error, DevRevError), (scenario, repr(error))
            self.error_types.add(error.error_type)
        self.error_types.update(event.payload.get("error_type") for event in events)
        for name in self.seen:
            self.seen[name].add(getattr(scenario, name))
        for channel, text in texts.items():
            self.written[channel] = self.written.get(channel, 0) + len(text)
        self.longest = max(self.longest, len(secret))
        self.examples += 1


@pytest.fixture
def console(caplog):
    """
    Every logger at DEBUG into ``caplog`` (those that do not propagate to the root too), and Airflow 3's
    structlog, at DEBUG, into the binary stream yielded (a stream of this test's own: Airflow 3.0 and 3.3
    both accept one, and a handler bound to pytest's capture of stdout would outlive it). Ask for it before
    ``capsys``: its teardown then rebinds Airflow's handlers to the session's output, not to a closed one.
    """
    try:
        from airflow.sdk.log import configure_logging
    except ImportError:  # Airflow 2.11: stdlib logging only
        configure_logging = None
    stream = io.BytesIO()
    if configure_logging:
        configure_logging(log_level="DEBUG", output=stream, cache_logger_on_first_use=False)
    loggers = [logging.getLogger()] + [
        logger for logger in logging.root.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    saved = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        if not logger.propagate:
            logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    yield stream
    for logger, level in saved:
        logger.setLevel(level)
        if caplog.handler in logger.handlers:
            logger.removeHandler(caplog.handler)
    if configure_logging:
        configure_logging(cache_logger_on_first_use=False)


@pytest.mark.property
@pytest.mark.parametrize("driver", ["requests", "aiohttp", "session_trigger", "new_sessions_trigger"])
def test_no_piece_of_a_secret_gets_out_of_any_error_path(driver, servers, console, caplog, capsys, record_token_check):
    sweep = Sweep(driver, servers, caplog, capsys, console)

    @sized(300, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @with_explicit_examples
    @given(scenario=scenarios(), secret=SECRETS)
    def examples(scenario: Scenario, secret: str) -> None:
        sweep.example(scenario, secret)

    examples()

    # Every kind of each dimension was tried, and every channel was really written to: a clean search of
    # nothing proves nothing.
    assert sweep.seen["place"] == {"token", *PROXY_PLACES}
    assert sweep.seen["fault"] == set(FAULTS)
    assert sweep.seen["encoded"] == {True, False}
    assert sweep.seen["scheme"] == {"http", "https"}
    assert sweep.longest == 200
    # The paths were really taken: DevRev's errors, the proxy's refusal, a refused URL, no connection (and
    # on the worker, a request the HTTP library refused: a non-Latin-1 proxy password, which requests
    # cannot put in a header).
    expected_types = {"token_revoked", "forbidden", "proxy_refused", "invalid_input"}
    if driver == "session_trigger":  # a 404 or a transient failure ends the wait: its deadline has passed
        expected_types.add("sensor_timeout")
    else:
        expected_types |= {"not_found", "too_many_requests", "internal_error", "connection_error"}
    if driver == "requests":
        expected_types.add("invalid_request")
    if driver != "new_sessions_trigger":  # it reports errors in its log only
        assert sweep.error_types >= expected_types, sweep.error_types
    expected = {"log records", "exception and its chain", "reprs and trigger arguments", "metrics"}
    if driver == "session_trigger":
        expected = (expected - {"exception and its chain"}) | {"trigger events as stored"}
    if driver == "new_sessions_trigger":
        expected -= {"exception and its chain"}
    assert {channel for channel, size in sweep.written.items() if size} >= expected, sweep.written
    for channel, size in sorted(sweep.written.items()):
        record_token_check(f"secret sweep, {driver}: {channel} ({sweep.examples} secrets, {size:,} characters)", 0)
