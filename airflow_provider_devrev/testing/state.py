"""The data-set half of :class:`~airflow_provider_devrev.testing.simulator.DevRevSimulator`.

Kept apart from the HTTP half so the rules of what clients can see (appearance after K lookups, after
T clock seconds, or from clock time T) read in one place.
"""

from __future__ import annotations

import copy
import json
import random
import threading
from typing import TYPE_CHECKING, Any

# The module, not the package: the package's __init__ names the simulator, which builds on this module.
import airflow_provider_devrev.testing.data as data
from airflow_provider_devrev.testing.store import SessionStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


class SimulatorState:
    """Sessions of a simulator, guarded by one lock shared with the request handlers.

    :param seed: seeds the data set and the generator behind :meth:`make_session`.
    :param clock: time source for ``appear_after_seconds``.
    :param seed_data: whether to load the seeded data set.
    """

    def __init__(self, *, seed: int, clock: Callable[[], float], seed_data: bool) -> None:
        self._lock = threading.RLock()
        self._clock = clock
        self._seed = seed
        self._inflated: dict[str, tuple[int, str]] = {}
        # A generator of its own, so making sessions never shifts the seeded data set (and vice versa).
        self._rng = random.Random(f"devrev-simulator-make-{seed}")
        self._store = SessionStore()
        if seed_data:
            now = clock()
            for version_key, session in data.seed_sessions(seed):
                self._store.add(session, version_key=version_key, now=now)

    @property
    def sessions(self) -> list[dict[str, Any]]:
        """Copies of the sessions clients can currently see, ordered by created_at then session_id."""
        with self._lock:
            return self._store.visible(self._clock())

    def make_session(
        self,
        kind: str = "mobile",
        *,
        platform: str | None = None,
        session_id: str | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        """A realistic, contract-valid session object created now; it is NOT added (see :meth:`add_session`).

        :param kind: ``mobile`` or ``web``.
        :param platform: ``android`` (mobile default) or ``ios``; ``web`` for web.
        :param session_id: the id; a generated uuid4-shaped id when omitted.
        :param overrides: top-level fields to set; dict values are merged one level deep, so
            ``device_metadata={"app_version": "6.0.0"}`` keeps the other metadata.
        :raises ValueError: for an unknown kind or a platform that does not fit it.
        """
        with self._lock:
            return data.make_session(self._rng, kind, platform=platform, session_id=session_id, **overrides)

    def add_session(
        self,
        session: dict[str, Any],
        *,
        version_key: str,
        appear_after_requests: int | None = None,
        appear_after_seconds: float | None = None,
        appear_at: float | None = None,
    ) -> dict[str, Any]:
        """Add (or replace, same version key and id) a session; returns a copy of what is stored.

        The session is served as given, so it should be contract-valid (:meth:`make_session` output is).
        It needs ``type``, ``session_id``, an ISO-8601 ``created_at`` (lists are ordered by it) and, for a
        mobile session, ``platform``.

        :param session: the session object; a deep copy is stored.
        :param version_key: the app version key requests must name to find it.
        :param appear_after_requests: K: the first K-1 ``sessions.get`` requests for it (same session id,
            version key and platform) answer 404 ``not_found``, the K-th and later find it. Until then
            it is also missing from lists. Other requests do not count.
        :param appear_after_seconds: T: visible once ``clock() - clock_at_add >= T``. With both set, both
            conditions must hold.
        :param appear_at: the clock value from which it is visible: its upload time, on the simulator's clock
            (construct the simulator with ``clock=time.time``, or a fake clock, for this to be a date).
            Combines with the other conditions.
        :raises ValueError: for a session the simulator cannot serve or a negative/zero condition.
        """
        with self._lock:
            return self._store.add(
                session,
                version_key=version_key,
                now=self._clock(),
                appear_after_requests=appear_after_requests,
                appear_after_seconds=appear_after_seconds,
                appear_at=appear_at,
            )

    def remove_session(self, session_id: str, *, version_key: str | None = None) -> None:
        """Remove a session (under every version key, or only ``version_key``).

        :param session_id: the session id.
        :param version_key: restrict removal to this version key.
        :raises KeyError: when no such session exists.
        """
        with self._lock:
            if not self._store.remove(session_id, version_key):
                raise KeyError(session_id)

    # -- recordings ------------------------------------------------------------------------------------

    def inflate_recording(self, session_id: str, min_bytes: int, *, shape: str = "activity") -> None:
        """Make every recording (or tab) of ``session_id`` at least ``min_bytes`` long, to test streaming.

        The extra bytes are generated while the answer is sent (with chunked transfer encoding), so even
        hundreds of MB cost the simulator no memory.

        :param session_id: the session (under any version key).
        :param min_bytes: the least body size; 0 makes its recordings normal again.
        :param shape: what grows: ``"activity"``, more of the same user activity before the recording's
            ending; ``"crash_log"``, the crash or ANR log (``observability_sessions_log_data.value``) repeated
            into one string of ``min_bytes`` (only a crash or ANR session's last recording has a log: the
            others are served as they are); ``"tiny_events"``, a timeline of frame events of about 50 bytes
            each before the usual activity.
        """
        from airflow_provider_devrev.testing.recordings import SHAPES

        if isinstance(min_bytes, bool) or not isinstance(min_bytes, int) or min_bytes < 0:
            raise ValueError("min_bytes must be an int >= 0")
        if shape not in SHAPES:
            raise ValueError(f"shape must be one of {', '.join(SHAPES)}, not {shape!r}")
        with self._lock:
            if min_bytes:
                self._inflated[session_id] = (min_bytes, shape)
            else:
                self._inflated.pop(session_id, None)

    def recording_chunks(
        self, session_id: str, version_key: str, *, recording_id: str | None = None, tab_id: str | None = None
    ) -> Iterator[bytes]:
        """Exactly the ``sessions.data.get`` body the simulator serves for this recording (or tab), in chunks.

        :raises KeyError: when the simulator would answer 404 (no such visible session, recording or tab).
        """
        from airflow_provider_devrev.testing.api import recording_key
        from airflow_provider_devrev.testing.recordings import recording_chunks

        with self._lock:
            session = self._store.find(session_id=session_id, version_key=version_key, now=self._clock())
            key = recording_key(session, recording_id, tab_id) if session is not None else None
            if session is None or key is None:
                raise KeyError(session_id)
            session = copy.deepcopy(session)
            min_bytes, shape = self._inflated.get(session_id, (0, "activity"))
        return recording_chunks(
            session, key, seed=self._seed, version_key=version_key, min_bytes=min_bytes, shape=shape
        )

    def recording(
        self, session_id: str, version_key: str, *, recording_id: str | None = None, tab_id: str | None = None
    ) -> dict[str, Any]:
        """The recording (or tab) the simulator serves, parsed; see :meth:`recording_chunks`."""
        body = b"".join(self.recording_chunks(session_id, version_key, recording_id=recording_id, tab_id=tab_id))
        result: dict[str, Any] = json.loads(body)
        return result

    def developer_info(self, session_id: str, version_key: str, tab_id: str) -> dict[str, Any]:
        """The ``developer-info.get`` body the simulator serves for a web session's tab.

        :raises KeyError: when there is no such visible web session or tab.
        """
        from airflow_provider_devrev.testing.api import recording_key
        from airflow_provider_devrev.testing.recordings import developer_info

        with self._lock:
            session = self._store.find(session_id=session_id, version_key=version_key, now=self._clock())
            if session is None or session["type"] != "web" or recording_key(session, None, tab_id) is None:
                raise KeyError(session_id)
            return developer_info(copy.deepcopy(session), tab_id, seed=self._seed, version_key=version_key)
