"""A mobile session's generated recording: its metadata, its crash report or ANR trace, and its timeline."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_devrev.testing.data import isoformat_ms, parse_datetime
from airflow_provider_devrev.testing.timeline import TIMELINE_SLOT, TimelineProgress

if TYPE_CHECKING:
    from collections.abc import Iterator

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


def _is_last(session: dict[str, Any], key: str) -> bool:
    ids = session.get("recording_ids") or [key]
    return bool(key == ids[-1])


def mobile_recording(rng: random.Random, session: dict[str, Any], key: str) -> tuple[dict[str, Any], str]:
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
    recording["recording_events_timeline"] = [TIMELINE_SLOT]
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


def mobile_events(
    rng: random.Random, session: dict[str, Any], key: str, progress: TimelineProgress, exception: str
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
