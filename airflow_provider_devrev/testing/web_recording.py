"""A web session's generated recording (a tab's metadata and timeline) and its developer info."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_devrev.testing.data import isoformat_ms, parse_datetime
from airflow_provider_devrev.testing.timeline import TIMELINE_SLOT, TimelineProgress, recording_rng

if TYPE_CHECKING:
    from collections.abc import Iterator

_JS_ERRORS = (
    (
        "TypeError: Cannot read properties of undefined (reading 'price')",
        ("CartSummary", "renderWithHooks", "updateFunctionComponent", "beginWork"),
    ),
    (
        "Uncaught (in promise) Error: Request failed with status code 500",
        ("createError", "settle", "XMLHttpRequest.onloadend"),
    ),
    (
        "ReferenceError: dataLayer is not defined",
        ("trackCheckout", "HTMLButtonElement.onClick"),
    ),
)
_WEB_FAILURES = (
    ("POST", "/api/checkout/orders", 500, "Internal Server Error"),
    ("GET", "/api/recommendations?sku=EMP-200", 404, "Not Found"),
    ("POST", "/api/cart/coupons", 422, "Unprocessable Entity"),
    ("GET", "/api/inventory/EMP-200", 503, "Service Unavailable"),
    ("GET", "/static/img/products/grinder-x.webp", 404, "Not Found"),
)
_WEB_TARGETS = (
    ("button#add-to-cart", "Add to cart"),
    ("a.product-card", "Espresso Machine Pro"),
    ("button#checkout", "Checkout"),
    ("button#place-order", "Place order"),
    ("input#coupon", "Coupon code"),
    ("nav a[href='/cart']", "Cart"),
)


def developer_info(session: dict[str, Any], tab_id: str, *, seed: int, version_key: str) -> dict[str, Any]:
    """The ``developer-info.get`` body of a web session's tab: its console errors and network calls."""
    rng = recording_rng(seed, version_key, session["session_id"], "developer-info\x00" + tab_id)
    start = parse_datetime(session["created_at"])
    duration = max(int(session.get("session_duration_ms") or 60_000), 10_000)
    page_url = str(session.get("first_page_url") or "https://shop.acme.example/")
    page_name = str(session.get("first_page_title") or "Acme Shop")
    properties = {"normalized_url": page_url.split("?")[0], "page_name": page_name, "page_url": page_url}

    def moment() -> str:
        return isoformat_ms(start + timedelta(milliseconds=rng.randint(0, duration)))

    console: list[dict[str, Any]] = []
    counts = session.get("console_metadata") or {}
    for level, limit in (("error", 20), ("warn", 5), ("log", 5)):
        for _ in range(min(int(counts.get(level) or 0), limit)):
            if level == "error":
                message, functions = rng.choice(_JS_ERRORS)
                stack = "".join(
                    f"\n    at {name} (https://shop.acme.example/static/js/main.8f3a2c.js:2:{rng.randint(1000, 99999)})"
                    for name in functions
                )
                value = message + stack
            elif level == "warn":
                value = 'Warning: Each child in a list should have a unique "key" prop (in `ProductGrid`).'
            else:
                value = f"[analytics] page_view {properties['normalized_url']}"
            console.append(
                {"type": level, "value": value, "timestamp": moment(), "full_url": page_url, "properties": properties}
            )
    network: list[dict[str, Any]] = []
    status_counts = (session.get("network_metadata") or {}).get("status_counts") or {}
    failed = sum(int(count) for status, count in status_counts.items() if str(status)[:1] in ("4", "5"))
    for _ in range(min(failed, 20)):
        method, path, status, text = rng.choice(_WEB_FAILURES)
        network.append(_network_call(rng, moment(), method, path, status, text))
    for _ in range(rng.randint(3, 8)):
        network.append(_network_call(rng, moment(), "GET", "/api/products?page=1", 200, "OK"))
    console.sort(key=lambda item: str(item["timestamp"]))
    network.sort(key=lambda item: str(item["timestamp"]))
    return {"console_data": console, "network_data": network}


def _network_call(rng: random.Random, when: str, method: str, path: str, status: int, text: str) -> dict[str, Any]:
    return {
        "type": rng.choice(("fetch", "xhr")),
        "timestamp": when,
        "request": {"method": method, "url": "https://shop.acme.example" + path},
        "response": {"status": status, "status_text": text, "duration_ms": rng.randint(40, 4_000)},
    }


def web_recording(rng: random.Random, session: dict[str, Any], tab_id: str) -> dict[str, Any]:
    start = parse_datetime(session["created_at"])
    duration = int(session.get("session_duration_ms") or 60_000)
    recording: dict[str, Any] = {"recording": "web_recording", "session_id": session["session_id"], "tab_id": tab_id}
    for name in (
        "created_at",
        "device_metadata",
        "rage_click_count",
        "dead_click_count",
        "console_metadata",
        "network_metadata",
        "first_page_title",
        "first_page_url",
        "page_load_time_ms",
        "session_attributes",
        "rev_org_id",
        "rev_user_id",
    ):
        if name in session:
            recording[name] = session[name]
    recording["replay_data"] = [
        {
            "start_time": isoformat_ms(start),
            "end_time": isoformat_ms(start + timedelta(milliseconds=duration)),
            "presigned_url": f"https://media.devrev.example/replays/{session['session_id']}/{tab_id}.json.gz",
        }
    ]
    recording["timeline_data"] = {"events": [TIMELINE_SLOT]}
    return recording


def web_events(rng: random.Random, session: dict[str, Any], progress: TimelineProgress) -> Iterator[dict[str, Any]]:
    start = parse_datetime(session["created_at"])
    origin = "https://shop.acme.example"
    page = str(session.get("first_page_url") or origin + "/")
    clock = 0

    def at() -> str:
        return isoformat_ms(start + timedelta(milliseconds=clock))

    yield {"event_type": "nav", "timestamp": at(), "page_url": page, "label": str(session.get("first_page_title", ""))}
    clock += int(session.get("page_load_time_ms") or 900)
    yield {
        "event_type": "perf_capture",
        "timestamp": at(),
        "page_url": page,
        "event_details": {"lcp_ms": str(rng.randint(600, 4_000)), "cls": f"{rng.uniform(0, 0.3):.3f}"},
    }
    rage, dead = int(session.get("rage_click_count") or 0), int(session.get("dead_click_count") or 0)
    count, activity = 0, rng.randint(15, 40)
    while count < activity or progress.short:
        clock += rng.randint(5, 40) if progress.min_bytes else rng.randint(300, 6_000)
        roll = rng.random()
        if roll < 0.55:
            target, label = rng.choice(_WEB_TARGETS)
            event: dict[str, Any] = {
                "event_type": "click",
                "timestamp": at(),
                "page_url": page,
                "target": target,
                "label": label,
            }
            if dead and rng.random() < 0.1:
                event["is_dead"] = True
                dead -= 1
        elif roll < 0.7:
            event = {
                "event_type": "form_change",
                "timestamp": at(),
                "page_url": page,
                "target": "input#coupon",
                "value": "***",
            }
        else:
            path = rng.choice(
                ("/", "/products/espresso-machine-pro", "/products?category=grinders", "/cart", "/checkout")
            )
            page = origin + path
            event = {"event_type": "nav", "timestamp": at(), "page_url": page}
        count += 1
        yield event
    for _ in range(rage):
        clock += rng.randint(80, 200)
        yield {
            "event_type": "click",
            "timestamp": at(),
            "page_url": page,
            "target": "button#place-order",
            "label": "Place order",
            "is_rage": True,
        }
    for _ in range(dead):
        clock += rng.randint(400, 1_200)
        yield {
            "event_type": "click",
            "timestamp": at(),
            "page_url": page,
            "target": "div.price-summary",
            "is_dead": True,
        }
    clock += rng.randint(2_000, 30_000)
    yield {"event_type": "recording_stopped", "timestamp": at(), "page_url": page}
