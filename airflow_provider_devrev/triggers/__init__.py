"""DevRev triggers; import them from :mod:`airflow_provider_devrev.triggers.devrev`."""

from __future__ import annotations

#: The module every DevRev trigger is published under (see :func:`classpath`).
PUBLIC_MODULE = "airflow_provider_devrev.triggers.devrev"


def classpath(trigger: object) -> str:
    """The classpath a trigger serializes under.

    Airflow stores it with every trigger row, and identifies an event trigger by it (with its arguments), so
    the provider's own triggers keep the public path they were first published under, whichever module defines
    them now: triggers saved by an earlier release resume, and an asset's watcher is not re-created. A subclass
    defined elsewhere (a user's) keeps its own module.
    """
    cls = type(trigger)
    module = PUBLIC_MODULE if cls.__module__.startswith(f"{__name__}.") else cls.__module__
    return f"{module}.{cls.__qualname__}"
