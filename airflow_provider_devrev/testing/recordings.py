"""Generated recordings of the DevRev simulator: what ``sessions.data.get`` and ``developer-info.get`` serve.

Each recording follows from its session, deterministically (the simulator's seed, the version key, the
session id and the recording or tab id seed its generator), so a test can ask the simulator for the exact
bytes it serves (:meth:`~airflow_provider_devrev.testing.simulator.DevRevSimulator.recording_chunks`):

- a mobile session's last recording ends as the session did: an Android crash has a Kotlin/Java stack trace
  in ``observability_sessions_log_data``, an iOS crash a Swift crash report, an ANR the main thread's trace;
  its ``recording_events_timeline`` is a launch, screens, taps, swipes and API calls, ending with the
  ``exception`` (or ``anr``) event on the screen where it happened. Earlier recordings end with a pause.
- a web tab's timeline is navigations, clicks (rage and dead ones as the session counts them), form
  changes and performance captures, ending with ``recording_stopped``; its developer info has the session's
  console errors (JavaScript stack traces) and its failed network calls (the 4xx and 5xx it counts).

A recording can be made large (:meth:`~airflow_provider_devrev.testing.simulator.DevRevSimulator.
inflate_recording`): more of the same user activity before the ending, generated while it is sent, so
tens of MB cost the simulator no memory.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_devrev.testing.data import isoformat_ms, parse_datetime

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Bytes per chunk of a generated body.
CHUNK_BYTES = 1 << 16
_PAD = "\x00timeline\x00"

_ANDROID_SCREENS = ("HomeActivity", "ProductListFragment", "ProductDetailActivity", "CartActivity", "CheckoutActivity")
_IOS_SCREENS = (
    "HomeViewController",
    "ProductListViewController",
    "ProductDetailViewController",
    "CartViewController",
    "CheckoutViewController",
)
_BUTTONS = ("add_to_cart_button", "search_field", "product_card", "checkout_button", "apply_coupon_button", "back")
_API_CALLS = (
    ("GET", "/v2/products?category=grinders"),
    ("GET", "/v2/products/espresso-machine-pro"),
    ("POST", "/v2/cart/items"),
    ("GET", "/v2/cart"),
    ("POST", "/v2/checkout/orders"),
)
_API_HOST = "https://api.acme.example"

# (exception class, message, frames): what the app's crash reporter would have captured.
_ANDROID_CRASHES = (
    (
        "java.lang.NullPointerException",
        "Attempt to invoke virtual method 'java.lang.String com.acme.shop.cart.CartItem.getSku()' on a null "
        "object reference",
        (
            "com.acme.shop.checkout.CheckoutViewModel.buildOrder(CheckoutViewModel.kt:142)",
            "com.acme.shop.checkout.CheckoutViewModel.access$buildOrder(CheckoutViewModel.kt:38)",
            "com.acme.shop.checkout.CheckoutViewModel$placeOrder$1.invokeSuspend(CheckoutViewModel.kt:97)",
            "kotlin.coroutines.jvm.internal.BaseContinuationImpl.resumeWith(ContinuationImpl.kt:33)",
            "kotlinx.coroutines.DispatchedTask.run(DispatchedTask.kt:108)",
        ),
    ),
    (
        "java.lang.IllegalStateException",
        "Fragment ProductDetailFragment{4c1f2a9} not attached to a context.",
        (
            "androidx.fragment.app.Fragment.requireContext(Fragment.java:972)",
            "com.acme.shop.product.ProductDetailFragment.showPrice(ProductDetailFragment.kt:211)",
            "com.acme.shop.product.ProductDetailFragment.onPriceLoaded$lambda$4(ProductDetailFragment.kt:118)",
            "androidx.lifecycle.LiveData.considerNotify(LiveData.java:133)",
        ),
    ),
    (
        "java.lang.IndexOutOfBoundsException",
        "Index: 3, Size: 3",
        (
            "java.util.ArrayList.get(ArrayList.java:437)",
            "com.acme.shop.cart.CartAdapter.onBindViewHolder(CartAdapter.kt:57)",
            "androidx.recyclerview.widget.RecyclerView$Adapter.bindViewHolder(RecyclerView.java:7556)",
        ),
    ),
)
_ANDROID_MAIN_LOOP = (
    "android.os.Handler.handleCallback(Handler.java:958)",
    "android.os.Handler.dispatchMessage(Handler.java:99)",
    "android.os.Looper.loopOnce(Looper.java:205)",
    "android.os.Looper.loop(Looper.java:294)",
    "android.app.ActivityThread.main(ActivityThread.java:8177)",
    "java.lang.reflect.Method.invoke(Native Method)",
    "com.android.internal.os.RuntimeInit$MethodAndArgsCaller.run(RuntimeInit.java:552)",
    "com.android.internal.os.ZygoteInit.main(ZygoteInit.java:971)",
)
_IOS_CRASHES = (
    (
        "EXC_BREAKPOINT (SIGTRAP)",
        "Fatal error: Unexpectedly found nil while unwrapping an Optional value",
        (
            "CartViewModel.total.getter + 212 (CartViewModel.swift:88)",
            "CartViewController.updateSummary() + 96 (CartViewController.swift:143)",
            "closure #1 in CartViewController.viewDidLoad() + 64 (CartViewController.swift:61)",
        ),
    ),
    (
        "EXC_BAD_ACCESS (SIGSEGV)",
        "KERN_INVALID_ADDRESS at 0x0000000000000010",
        (
            "ImageCache.store(_:for:) + 148 (ImageCache.swift:52)",
            "ProductCell.configure(with:) + 392 (ProductCell.swift:77)",
            "ProductListViewController.collectionView(_:cellForItemAt:) + 240 (ProductListViewController.swift:118)",
        ),
    ),
)
_IOS_MAIN_LOOP = (
    ("UIKitCore", "-[UIApplication sendAction:to:from:forEvent:] + 100"),
    ("UIKitCore", "__eventFetcherSourceCallback + 156"),
    ("CoreFoundation", "__CFRUNLOOP_IS_CALLING_OUT_TO_A_SOURCE0_PERFORM_FUNCTION__ + 28"),
    ("CoreFoundation", "__CFRunLoopRun + 1996"),
    ("GraphicsServices", "GSEventRunModal + 164"),
    ("UIKitCore", "-[UIApplication _run] + 888"),
    ("UIKitCore", "UIApplicationMain + 340"),
    ("AcmeShop", "main + 64 (AppDelegate.swift:12)"),
)
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


def recording_rng(seed: int, version_key: str, session_id: str, key: str) -> random.Random:
    """The generator of one recording: the same ids and seed give the same recording, byte for byte."""
    digest = hashlib.sha256(f"{seed}\x00{version_key}\x00{session_id}\x00{key}".encode()).hexdigest()
    return random.Random(digest)


def recording_chunks(
    session: dict[str, Any], key: str, *, seed: int, version_key: str, min_bytes: int = 0
) -> Iterator[bytes]:
    """
    The ``sessions.data.get`` body of ``session``'s recording (mobile) or tab (web) ``key``, in chunks.

    :param session: the stored session.
    :param key: one of its ``recording_ids`` or ``tab_ids``.
    :param seed: the simulator's seed.
    :param version_key: the session's version key.
    :param min_bytes: grow the body to at least this many bytes with more user activity before the ending.
    """
    rng = recording_rng(seed, version_key, session["session_id"], key)
    progress = _Progress(min_bytes)
    if session["type"] == "web":
        recording = _web_recording(rng, session, key)
        events = _web_events(rng, session, progress)
    else:
        recording, exception = _mobile_recording(rng, session, key)
        events = _mobile_events(rng, session, key, progress, exception)
    text = json.dumps(recording, ensure_ascii=False, separators=(",", ":"))
    head, tail = text.split(json.dumps(_PAD))
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    buffer = [head]
    size = len(head)
    for event in events:
        piece = encode(event)
        buffer.append(piece)
        buffer.append(",")
        size += len(piece) + 1
        progress.bytes += len(piece) + 1
        if size >= CHUNK_BYTES:
            yield "".join(buffer).encode()
            buffer, size = [], 0
    if buffer and buffer[-1] == ",":
        buffer.pop()  # the last event's separator (the timeline always has events)
    buffer.append(tail)
    yield "".join(buffer).encode()


class _Progress:
    """How much of a timeline has been written, so its generator knows when a large one is large enough."""

    def __init__(self, min_bytes: int) -> None:
        self.min_bytes = min_bytes
        self.bytes = 0

    @property
    def short(self) -> bool:
        return self.bytes < self.min_bytes


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


# -- mobile ----------------------------------------------------------------------------------------------------


def _is_last(session: dict[str, Any], key: str) -> bool:
    ids = session.get("recording_ids") or [key]
    return bool(key == ids[-1])


def _mobile_recording(rng: random.Random, session: dict[str, Any], key: str) -> tuple[dict[str, Any], str]:
    """The recording without its timeline, and the class of the exception that ends it (if it crashed)."""
    ids = session.get("recording_ids") or [key]
    start = parse_datetime(session["created_at"])
    offset = ids.index(key) * 600_000 if key in ids else 0
    total_ram = rng.choice((4, 6, 8, 12)) * 1024**3
    recording: dict[str, Any] = {
        "recording": "mobile_recording",
        "session_id": session["session_id"],
        "recording_id": key,
        "created_at": isoformat_ms(start + timedelta(milliseconds=offset)),
        "device_metadata": session["device_metadata"],
        "app_launch": {"launch_type": "cold" if offset == 0 else "hot", "launch_time_ms": rng.randint(350, 2_400)},
        "total_ram": total_ram,
        "available_ram": rng.randint(total_ram // 10, total_ram // 2),
    }
    for name in ("rev_org_id", "rev_user_id"):
        if name in session:
            recording[name] = session[name]
    exception = ""
    if _is_last(session, key) and (session.get("is_crash") or session.get("is_anr")):
        log, exception = _crash_log(rng, session, start)
        recording["observability_sessions_log_data"] = {
            "is_crash": bool(session.get("is_crash")),
            "is_anr": bool(session.get("is_anr")) and not session.get("is_crash"),
            "value": log,
        }
    recording["recording_events_timeline"] = [_PAD]
    frames = [f"frame_{index:05d}" for index in range(0, rng.randint(40, 120) * 25, 25)]
    recording["video_playback_data"] = [
        {
            "start_frame": frames[0],
            "end_frame": frames[-1],
            "frames": frames,
            "frame_image_map": {
                frame: f"https://media.devrev.example/sessions/{session['session_id']}/{key}/{frame}.webp"
                for frame in frames[:: max(1, len(frames) // 8)]
            },
            "presigned_url": f"https://media.devrev.example/sessions/{session['session_id']}/{key}/video.mp4",
        }
    ]
    recording["user_attributes"] = {"plan": rng.choice(("free", "plus")), "locale": "en_US"}
    return recording, exception


def _crash_log(rng: random.Random, session: dict[str, Any], start: datetime) -> tuple[str, str]:
    """The crash report (or ANR trace) text, and the exception class it names."""
    device = session["device_metadata"]
    pid = rng.randint(2_000, 32_000)
    if session.get("platform") == "ios":
        kind, reason, app_frames = rng.choice(_IOS_CRASHES)
        lines = [
            f"Incident Identifier: {str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()}",
            f"Hardware Model:      {device['model']}",
            f"Process:             AcmeShop [{pid}]",
            "Identifier:          com.acme.shop",
            f"Version:             {device['app_version']} ({device['app_version'].replace('.', '')}0)",
            f"OS Version:          iPhone OS {device['os_version']}",
            f"Date/Time:           {start.strftime('%Y-%m-%d %H:%M:%S.000 +0000')}",
            "",
            f"Exception Type:  {kind}",
            f"Termination Reason: {reason}",
            "Triggered by Thread:  0",
            "",
            "Thread 0 name:  Dispatch queue: com.apple.main-thread",
            "Thread 0 Crashed:",
        ]
        address = 0x0000000102900000 + rng.getrandbits(20)
        numbered = [("AcmeShop", frame) for frame in app_frames] + list(_IOS_MAIN_LOOP)
        for index, (image, frame) in enumerate(numbered):
            lines.append(f"{index:<3} {image:<18} 0x{address + index * 0x1F4:016x} {frame}")
        return "\n".join(lines), kind.split()[0]
    if session.get("is_crash"):
        exception, message, frames = rng.choice(_ANDROID_CRASHES)
        lines = ["FATAL EXCEPTION: main", f"Process: com.acme.shop, PID: {pid}", f"{exception}: {message}"]
        lines += [f"\tat {frame}" for frame in (*frames, *_ANDROID_MAIN_LOOP)]
        return "\n".join(lines), exception
    waited = rng.randint(5_001, 9_800)
    lines = [
        "ANR in com.acme.shop (com.acme.shop/.checkout.CheckoutActivity)",
        f"PID: {pid}",
        f"Reason: Input dispatching timed out (Waited {waited}ms for MotionEvent(action=UP))",
        f"Load: {rng.uniform(4, 9):.2f} / {rng.uniform(4, 9):.2f} / {rng.uniform(4, 9):.2f}",
        "",
        '"main" prio=5 tid=1 Blocked',
        f'  | group="main" sCount=1 ucsCount=0 flags=1 obj=0x72c1e4b8 self=0xb400007c{rng.getrandbits(32):08x}',
        "  at com.acme.shop.data.OrderRepository.saveSync(OrderRepository.kt:64)",
        "  - waiting to lock <0x0b5e3c2a> (a java.lang.Object) held by thread 23",
        "  at com.acme.shop.checkout.CheckoutActivity.onPlaceOrder(CheckoutActivity.kt:188)",
        "  at com.acme.shop.checkout.CheckoutActivity.onCreate$lambda$2(CheckoutActivity.kt:74)",
        "  at android.view.View.performClick(View.java:7659)",
        *(f"  at {frame}" for frame in _ANDROID_MAIN_LOOP),
        "",
        '"DefaultDispatcher-worker-3" prio=5 tid=23 Sleeping',
        "  at java.lang.Thread.sleep(Native method)",
        "  at com.acme.shop.data.OrderRepository.flushToDisk(OrderRepository.kt:131)",
        "  - locked <0x0b5e3c2a> (a java.lang.Object)",
    ]
    return "\n".join(lines), ""


def _mobile_events(
    rng: random.Random, session: dict[str, Any], key: str, progress: _Progress, exception: str
) -> Iterator[dict[str, Any]]:
    screens = _IOS_SCREENS if session.get("platform") == "ios" else _ANDROID_SCREENS
    width = int(session["device_metadata"].get("screen_width") or 1080)
    height = int(session["device_metadata"].get("screen_height") or 2340)
    clock = 0
    screen = screens[0]
    yield {"event_type": "system", "event_name": "app_launch", "timestamp_offset_ms": clock}
    yield {"event_type": "system", "event_name": "created", "screen": screen, "timestamp_offset_ms": clock + 120}
    yield {"event_type": "system", "event_name": "started", "screen": screen, "timestamp_offset_ms": clock + 180}
    clock += 200
    activity = rng.randint(20, 60)
    count = 0
    # Normal activity until the recording is long enough, then the ending.
    while count < activity or progress.short:
        clock += rng.randint(5, 40) if progress.min_bytes else rng.randint(200, 4_000)
        roll = rng.random()
        if roll < 0.5:
            event: dict[str, Any] = {
                "event_type": "user",
                "event_name": rng.choice(("single_tap", "single_tap", "single_tap", "double_tap", "long_press")),
                "screen": screen,
                "object_name": rng.choice(_BUTTONS),
                "input_type": "tool_type_finger",
                "coordinates": [{"x": round(rng.uniform(0, width), 1), "y": round(rng.uniform(0, height), 1)}],
                "timestamp_offset_ms": clock,
            }
        elif roll < 0.65:
            event = {
                "event_type": "user",
                "event_name": rng.choice(("swipe_up", "swipe_down", "swipe_left")),
                "screen": screen,
                "input_type": "tool_type_finger",
                "timestamp_offset_ms": clock,
            }
        elif roll < 0.85:
            method, path = rng.choice(_API_CALLS)
            event = {
                "event_type": "plug",
                "event_name": "api",
                "screen": screen,
                "request_properties": {"method": method, "url": _API_HOST + path},
                "response_properties": {
                    "status_code": rng.choice((200, 200, 200, 201, 304)),
                    "duration_ms": rng.randint(40, 900),
                },
                "timestamp_offset_ms": clock,
            }
        else:
            screen = rng.choice(screens)
            event = {"event_type": "system", "event_name": "resumed", "screen": screen, "timestamp_offset_ms": clock}
        count += 1
        yield event
    last = _is_last(session, key)
    final_screen = screens[-1] if screen == screens[0] else screen
    if final_screen != screen:
        clock += rng.randint(300, 1_500)
        yield {"event_type": "system", "event_name": "resumed", "screen": final_screen, "timestamp_offset_ms": clock}
    clock += rng.randint(800, 3_000)
    yield {
        "event_type": "user",
        "event_name": "single_tap",
        "screen": final_screen,
        "object_name": "checkout_button" if "Checkout" in final_screen else rng.choice(_BUTTONS),
        "input_type": "tool_type_finger",
        "coordinates": [{"x": round(width * 0.5, 1), "y": round(height * 0.9, 1)}],
        "timestamp_offset_ms": clock,
    }
    if last and session.get("is_crash"):
        clock += rng.randint(20, 400)
        yield {
            "event_type": "system",
            "event_name": "exception",
            "screen": final_screen,
            "exception_class_name": exception,
            "exception_tag": "fatal",
            "timestamp_offset_ms": clock,
        }
    elif last and session.get("is_anr"):
        clock += rng.randint(5_001, 9_000)
        yield {
            "event_type": "system",
            "event_name": "anr",
            "screen": final_screen,
            "non_responsive": True,
            "timestamp_offset_ms": clock,
        }
    else:
        clock += rng.randint(1_000, 20_000)
        yield {"event_type": "system", "event_name": "paused", "screen": final_screen, "timestamp_offset_ms": clock}
        yield {
            "event_type": "system",
            "event_name": "stopped",
            "screen": final_screen,
            "timestamp_offset_ms": clock + 60,
        }


# -- web -------------------------------------------------------------------------------------------------------


def _web_recording(rng: random.Random, session: dict[str, Any], tab_id: str) -> dict[str, Any]:
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
    recording["timeline_data"] = {"events": [_PAD]}
    return recording


def _web_events(rng: random.Random, session: dict[str, Any], progress: _Progress) -> Iterator[dict[str, Any]]:
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
