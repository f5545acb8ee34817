"""Seeded data set and session factories for the DevRev simulator.

The seeded data set holds 42 sessions across four app version keys:

- ``com.acme.shop@5.2.0`` (``SEED_VERSION_KEY``): 12 android and 9 ios sessions;
- ``com.acme.shop@5.1.4`` (``SEED_PREVIOUS_VERSION_KEY``): 4 android and 3 ios sessions, a week older;
- ``shop.acme.example@2025.06.1`` (``SEED_WEB_VERSION_KEY``): 10 web sessions;
- ``shop.acme.example@2025.05.3`` (``SEED_PREVIOUS_WEB_VERSION_KEY``): 4 web sessions, a week older.

Three well-known sessions exist whatever the seed, with identical content every time, so example DAGs
and documentation can name them:

- ``SEED_ANDROID_SESSION_ID`` (``sim-android-crash-0001``): android, version ``SEED_VERSION_KEY``, a crash
  (``is_crash`` and ``has_exception_occurred`` true), two recordings.
- ``SEED_IOS_SESSION_ID`` (``sim-ios-ragetap-0001``): ios, version ``SEED_VERSION_KEY``, rage taps, no crash.
- ``SEED_WEB_SESSION_ID`` (``sim-web-errors-0001``): web, version ``SEED_WEB_VERSION_KEY``, console errors,
  rage and dead clicks, 4xx/5xx network responses.

All seeded timestamps are fixed (the newest is ``SEED_EPOCH``), not relative to today, so list results
are reproducible; sessions made with :func:`make_session` default to the current time instead, because
they model a session that has just been uploaded.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final

DEFAULT_TOKEN: Final = "devrev-simulator-token-0123456789abcdef"

SEED_VERSION_KEY: Final = "com.acme.shop@5.2.0"
SEED_PREVIOUS_VERSION_KEY: Final = "com.acme.shop@5.1.4"
SEED_WEB_VERSION_KEY: Final = "shop.acme.example@2025.06.1"
SEED_PREVIOUS_WEB_VERSION_KEY: Final = "shop.acme.example@2025.05.3"
SEED_VERSION_KEYS: Final = (
    SEED_VERSION_KEY,
    SEED_PREVIOUS_VERSION_KEY,
    SEED_WEB_VERSION_KEY,
    SEED_PREVIOUS_WEB_VERSION_KEY,
)

SEED_ANDROID_SESSION_ID: Final = "sim-android-crash-0001"
SEED_IOS_SESSION_ID: Final = "sim-ios-ragetap-0001"
SEED_WEB_SESSION_ID: Final = "sim-web-errors-0001"

SEED_EPOCH: Final = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)

PLATFORMS: Final = ("android", "ios", "web")
MOBILE_PLATFORMS: Final = ("android", "ios")

# (manufacturer, model, width, height, os versions, platform SDK level per os version)
_ANDROID_DEVICES: Final = (
    ("samsung", "SM-S918B", 1080, 2340, ("14", "13")),
    ("Google", "Pixel 8", 1080, 2400, ("14",)),
    ("Google", "Pixel 6a", 1080, 2400, ("14", "13", "12")),
    ("Xiaomi", "2201117TG", 1080, 2400, ("13", "12")),
    ("OnePlus", "CPH2449", 1240, 2772, ("14", "13")),
)
_ANDROID_API_LEVEL: Final = {"14": "34", "13": "33", "12": "31"}
_IOS_DEVICES: Final = (
    ("Apple", "iPhone15,2", 1179, 2556, ("17.5.1", "17.4")),
    ("Apple", "iPhone14,5", 1170, 2532, ("17.5.1", "16.7.8")),
    ("Apple", "iPhone12,8", 750, 1334, ("16.7.8", "15.8.2")),
    ("Apple", "iPad13,18", 1640, 2360, ("17.5.1",)),
)
_NETWORKS: Final = ("wifi", "wifi", "wifi", "cellular_5g", "cellular_4g", "cellular_3g")
_PLUG_SDK_VERSIONS: Final = ("2.1.0", "2.0.3")

# (browser, version, os, device type, model or None)
_BROWSERS: Final = (
    ("Chrome", "125.0.6422.142", "Windows", "desktop", None),
    ("Chrome", "125.0.6422.112", "macOS", "desktop", None),
    ("Safari", "17.5", "macOS", "desktop", None),
    ("Firefox", "126.0.1", "Linux", "desktop", None),
    ("Edge", "125.0.2535.85", "Windows", "desktop", None),
    ("Chrome", "125.0.6422.147", "Android", "mobile", "Pixel 7"),
    ("Safari", "17.5", "iOS", "mobile", "iPhone"),
)
_PAGES: Final = (
    ("/", "Acme Shop | Home"),
    ("/products/espresso-machine-pro", "Espresso Machine Pro | Acme Shop"),
    ("/products?category=grinders", "Grinders | Acme Shop"),
    ("/cart", "Your cart | Acme Shop"),
    ("/checkout", "Checkout | Acme Shop"),
    ("/account/orders", "Your orders | Acme Shop"),
)
_WEB_ORIGIN: Final = "https://shop.acme.example"
_ORGS: Final = ("REV-AbCdEfGh", "REV-Q7mZr2Lp", "REV-x9TnB4wK")


def isoformat_ms(moment: datetime) -> str:
    """Format a datetime the way the API does: UTC, millisecond precision, ``Z`` suffix.

    :param moment: an aware datetime (naive ones are taken as UTC).
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_datetime(value: str) -> datetime:
    """Parse an ISO-8601 date-time as sent by clients; naive values are taken as UTC.

    :param value: the text, for example ``2025-06-01T12:00:00.000Z``.
    :raises ValueError: when the text is not an ISO-8601 date-time.
    """
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _timestamp(created_at: datetime | str | None) -> str:
    # A string is taken as given, so tests can set exact (or deliberately odd) timestamps.
    if isinstance(created_at, str):
        return created_at
    return isoformat_ms(created_at or datetime.now(UTC))


def _random_id(rng: random.Random) -> str:
    # uuid4 layout from the seeded generator: realistic ids that are still reproducible.
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    # One level of merging so ``device_metadata={"app_version": "6.0.0"}`` keeps the other required
    # metadata fields and the session stays contract-valid.
    for key, value in overrides.items():
        current = base.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            base[key] = {**current, **value}
        else:
            base[key] = value
    return base


def _identity(rng: random.Random, session: dict[str, Any]) -> None:
    session["rev_org_id"] = rng.choice(_ORGS)
    # About a quarter of real sessions are anonymous (no identified user).
    if rng.random() < 0.75:
        session["rev_user_id"] = "REVU-" + "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", k=8))


def make_mobile_session(
    rng: random.Random,
    *,
    platform: str = "android",
    session_id: str | None = None,
    created_at: datetime | str | None = None,
    app_version: str = "5.2.0",
    **overrides: Any,
) -> dict[str, Any]:
    """Build a contract-valid ``mobile`` session.

    :param rng: source of randomness; pass a seeded ``random.Random`` for reproducible output.
    :param platform: ``android`` or ``ios``.
    :param session_id: the id; a uuid4-shaped id from ``rng`` when omitted.
    :param created_at: session start (a datetime, or ISO-8601 text used verbatim); now when omitted.
    :param app_version: goes to ``device_metadata.app_version``.
    :param overrides: top-level fields to set; dict values are merged one level deep.
    :raises ValueError: for a platform other than android or ios.
    """
    if platform not in MOBILE_PLATFORMS:
        raise ValueError(f"mobile sessions have platform 'android' or 'ios', not {platform!r}")
    if platform == "android":
        manufacturer, model, width, height, os_versions = rng.choice(_ANDROID_DEVICES)
        os_version = rng.choice(os_versions)
        sdk_version = _ANDROID_API_LEVEL[os_version]
    else:
        manufacturer, model, width, height, os_versions = rng.choice(_IOS_DEVICES)
        os_version = rng.choice(os_versions)
        sdk_version = ".".join(os_version.split(".")[:2])
    is_crash = rng.random() < 0.15
    # ANRs are an Android notion; iOS reports hangs differently and the SDK leaves is_anr false.
    is_anr = platform == "android" and not is_crash and rng.random() < 0.1
    duration = rng.randint(4_000, 90_000) if is_crash else rng.randint(20_000, 1_800_000)
    session: dict[str, Any] = {
        "type": "mobile",
        "platform": platform,
        "session_id": session_id if session_id is not None else _random_id(rng),
        "created_at": _timestamp(created_at),
        "device_metadata": {
            "app_version": app_version,
            "manufacturer": manufacturer,
            "model": model,
            "network_type": rng.choice(_NETWORKS),
            "os_version": os_version,
            "plug_sdk_version": rng.choice(_PLUG_SDK_VERSIONS),
            "screen_height": height,
            "screen_width": width,
            "sdk_version": sdk_version,
        },
        "has_exception_occurred": is_crash or rng.random() < 0.2,
        "is_anr": is_anr,
        "is_crash": is_crash,
        "rage_tap": rng.random() < 0.15,
        "session_duration_ms": duration,
        "recording_ids": [f"rec_{rng.getrandbits(48):012x}" for _ in range(1 + duration // 600_000)],
    }
    _identity(rng, session)
    return _merge(session, overrides)


def make_web_session(
    rng: random.Random,
    *,
    session_id: str | None = None,
    created_at: datetime | str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Build a contract-valid ``web`` session.

    :param rng: source of randomness; pass a seeded ``random.Random`` for reproducible output.
    :param session_id: the id; a uuid4-shaped id from ``rng`` when omitted.
    :param created_at: session start (a datetime, or ISO-8601 text used verbatim); now when omitted.
    :param overrides: top-level fields to set; dict values are merged one level deep.
    """
    browser, browser_version, os_name, device_type, model = rng.choice(_BROWSERS)
    path, title = rng.choice(_PAGES)
    errors = rng.choice((0, 0, 0, 0, 1, 2, 5))
    status_counts = {"200": rng.randint(20, 400), "304": rng.randint(0, 60)}
    if rng.random() < 0.25:
        status_counts["404"] = rng.randint(1, 4)
    if rng.random() < 0.1:
        status_counts["500"] = rng.randint(1, 2)
    device: dict[str, Any] = {
        "type": device_type,
        "browser": browser,
        "browser_version": browser_version,
        "network_type": rng.choice(("wifi", "ethernet", "4g")) if device_type == "desktop" else "4g",
        "os": os_name,
    }
    if model is not None:
        device["model"] = model
    session: dict[str, Any] = {
        "type": "web",
        "platform": "web",
        "session_id": session_id if session_id is not None else _random_id(rng),
        "created_at": _timestamp(created_at),
        "session_duration_ms": rng.randint(15_000, 2_400_000),
        "dead_click_count": rng.choice((0, 0, 0, 1, 3)),
        "rage_click_count": rng.choice((0, 0, 0, 0, 1, 2)),
        "device_metadata": device,
        "console_metadata": {"error": errors, "warn": rng.randint(0, 8), "log": rng.randint(0, 120)},
        "network_metadata": {"status_counts": status_counts},
        "first_page_title": title,
        "first_page_url": _WEB_ORIGIN + path,
        "page_load_time_ms": rng.randint(280, 4_500),
        "session_attributes": {"attributes": {"plan": rng.choice(("free", "pro", "business")), "locale": "en-US"}},
        "tab_ids": [f"tab_{rng.getrandbits(32):08x}" for _ in range(rng.choice((1, 1, 1, 2, 3)))],
    }
    _identity(rng, session)
    return _merge(session, overrides)


def make_session(
    rng: random.Random,
    kind: str = "mobile",
    *,
    platform: str | None = None,
    session_id: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Build a contract-valid session of either kind.

    :param rng: source of randomness.
    :param kind: ``mobile`` or ``web``.
    :param platform: ``android`` (mobile default), ``ios`` or ``web`` (the only web platform).
    :param session_id: the id; generated when omitted.
    :param overrides: top-level fields to set; dict values are merged one level deep.
    :raises ValueError: for an unknown kind or a platform that does not fit the kind.
    """
    if kind == "mobile":
        return make_mobile_session(rng, platform=platform or "android", session_id=session_id, **overrides)
    if kind == "web":
        if platform not in (None, "web"):
            raise ValueError(f"web sessions have platform 'web', not {platform!r}")
        return make_web_session(rng, session_id=session_id, **overrides)
    raise ValueError(f"kind must be 'mobile' or 'web', not {kind!r}")


def _well_known() -> list[tuple[str, dict[str, Any]]]:
    # A constant seed, so these three are byte-identical whatever seed the simulator gets.
    rng = random.Random("devrev-simulator-well-known")
    android = make_mobile_session(
        rng,
        platform="android",
        session_id=SEED_ANDROID_SESSION_ID,
        created_at=SEED_EPOCH - timedelta(hours=2),
        is_crash=True,
        is_anr=False,
        has_exception_occurred=True,
        rage_tap=False,
        session_duration_ms=754_000,
        recording_ids=["rec_a11d0c4a5401", "rec_a11d0c4a5402"],
        rev_user_id="REVU-ANDR0001",
    )
    ios = make_mobile_session(
        rng,
        platform="ios",
        session_id=SEED_IOS_SESSION_ID,
        created_at=SEED_EPOCH - timedelta(hours=3),
        is_crash=False,
        is_anr=False,
        has_exception_occurred=False,
        rage_tap=True,
        session_duration_ms=412_500,
        recording_ids=["rec_105a9e7a0001"],
        rev_user_id="REVU-IOS00001",
    )
    web = make_web_session(
        rng,
        session_id=SEED_WEB_SESSION_ID,
        created_at=SEED_EPOCH - timedelta(hours=1),
        rage_click_count=4,
        dead_click_count=2,
        console_metadata={"error": 3, "warn": 5, "log": 42},
        network_metadata={"status_counts": {"200": 184, "304": 12, "404": 2, "500": 1}},
        first_page_url=_WEB_ORIGIN + "/checkout",
        first_page_title="Checkout | Acme Shop",
        rev_user_id="REVU-WEB00001",
    )
    return [(SEED_VERSION_KEY, android), (SEED_VERSION_KEY, ios), (SEED_WEB_VERSION_KEY, web)]


def seed_sessions(seed: int) -> list[tuple[str, dict[str, Any]]]:
    """Build the seeded data set as ``(version_key, session)`` pairs.

    :param seed: makes the generated (not the well-known) sessions reproducible.
    """
    rng = random.Random(seed)
    result = _well_known()
    # (version key, platform, app version, sessions besides the well-known ones, age in days); the
    # previous releases' sessions are a week older, as they would be after an upgrade.
    layout = (
        (SEED_VERSION_KEY, "android", "5.2.0", 11, 0),
        (SEED_VERSION_KEY, "ios", "5.2.0", 8, 0),
        (SEED_PREVIOUS_VERSION_KEY, "android", "5.1.4", 4, 7),
        (SEED_PREVIOUS_VERSION_KEY, "ios", "5.1.4", 3, 7),
        (SEED_WEB_VERSION_KEY, "web", "", 9, 0),
        (SEED_PREVIOUS_WEB_VERSION_KEY, "web", "", 4, 7),
    )
    for version_key, platform, app_version, count, age_days in layout:
        newest = SEED_EPOCH - timedelta(days=age_days)
        for _ in range(count):
            created = newest - timedelta(milliseconds=rng.randint(0, 7 * 24 * 3600 * 1000))
            if platform == "web":
                session = make_web_session(rng, created_at=created)
            else:
                session = make_mobile_session(rng, platform=platform, created_at=created, app_version=app_version)
            result.append((version_key, session))
    return result
