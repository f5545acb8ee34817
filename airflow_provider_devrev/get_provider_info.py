"""Provider metadata for Airflow's provider manager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_provider_devrev import __version__

#: The connection form: Airflow 3.2+ reads it from here, Airflow 2.11 from
#: ``DevRevHook.get_ui_field_behaviour`` (which returns this same dict).
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["schema", "port", "login"],
    "relabeling": {"password": "API token", "host": "Base URL"},
    "placeholders": {
        "host": "https://api.devrev.ai",
        "password": "DevRev personal access token or service token",
        "extra": '{"timeout": 30, "request_timeout": 300, "max_retries": 5, "max_retry_wait": 300, '
        '"api_scope": "beta", "proxy": "http://proxy.example.com:3128", "ca_bundle": "/etc/ssl/certs/company-ca.pem", '
        '"verify_tls": true, "session_url_template": '
        '"https://devrev.example.com/sessions/{session_id}?platform={platform}&app={version_key}"}',
    },
}

#: The same extras as typed form fields, for Airflow 3.2+ (JSON-schema style, as the official providers do).
CONN_FIELDS: dict[str, Any] = {
    "timeout": {
        "label": "Read timeout (seconds)",
        "schema": {"type": ["number", "null"], "minimum": 0, "default": 30},
        "description": "Seconds to wait for each read of an answer. Connecting waits at most 10 s.",
    },
    "request_timeout": {
        "label": "Request timeout (seconds)",
        "schema": {"type": ["number", "null"], "minimum": 0, "default": 300},
        "description": "Seconds a whole request may take, body included: ends an answer that trickles in.",
    },
    "max_retries": {
        "label": "Max retries",
        "schema": {"type": ["integer", "null"], "minimum": 0, "default": 5},
        "description": "Retries of a 429, 5xx, connection error or timeout, after the first attempt.",
    },
    "max_retry_wait": {
        "label": "Max retry wait (seconds)",
        "schema": {"type": ["number", "null"], "minimum": 0, "default": 300},
        "description": "The longest Retry-After the hook waits out; a longer one fails the call at once.",
    },
    "api_scope": {
        "label": "API scope (X-Devrev-Scope)",
        "schema": {"type": ["string", "null"], "default": "beta"},
        "description": "Sent as X-Devrev-Scope (observability is a beta API); empty sends none.",
    },
    "allow_insecure_http": {
        "label": "Allow plain http:// to a non-loopback host",
        "schema": {"type": ["boolean", "null"], "default": False},
        "description": "Off by default: the token would cross the network in clear text.",
    },
    "proxy": {
        "label": "Proxy URL",
        "schema": {"type": ["string", "null"]},
        "description": "http://host:3128, or http://user:password@host:3128 (the password is masked). "
        "Empty: HTTPS_PROXY / NO_PROXY from the environment.",
    },
    "ca_bundle": {
        "label": "CA bundle (PEM file)",
        "schema": {"type": ["string", "null"]},
        "description": "CAs to trust instead of the default ones, e.g. your proxy's re-signing CA: a PEM file, "
        "or a directory hashed with openssl rehash. Empty: REQUESTS_CA_BUNDLE, else SSL_CERT_FILE and/or "
        "SSL_CERT_DIR, else the default CAs.",
    },
    "verify_tls": {
        "label": "Verify TLS certificates",
        "schema": {"type": ["boolean", "null"], "default": True},
        "description": "Turn off only on a lab network: the token could then be read by anyone in between.",
    },
    "session_url_template": {
        "label": "DevRev session link (URL template)",
        "schema": {"type": ["string", "null"]},
        "description": 'The address of a session in DevRev\'s app, for the "DevRev session" button on the '
        "tasks: an http(s) URL with {platform}, {session_id} and {version_key}, e.g. "
        "https://devrev.example.com/sessions/{session_id}. Empty: no button.",
    },
}


def _dashed(behaviour: dict[str, Any]) -> dict[str, Any]:
    # provider.yaml spells these keys with dashes; the hook method returns them with underscores.
    return {key.replace("_", "-"): value for key, value in behaviour.items()}


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata; ``package-name`` must equal the distribution name."""
    return {
        "package-name": "airflow-provider-devrev",
        "name": "DevRev",
        "description": "Wait for and fetch DevRev observability (session replay) sessions.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "DevRev",
                "external-doc-url": "https://developer.devrev.ai/",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "DevRev", "python-modules": ["airflow_provider_devrev.hooks.devrev"]}],
        "operators": [
            {
                "integration-name": "DevRev",
                "python-modules": [
                    "airflow_provider_devrev.operators.devrev",
                    "airflow_provider_devrev.operators.sweep",
                ],
            }
        ],
        "sensors": [{"integration-name": "DevRev", "python-modules": ["airflow_provider_devrev.sensors.devrev"]}],
        "triggers": [{"integration-name": "DevRev", "python-modules": ["airflow_provider_devrev.triggers.devrev"]}],
        "extra-links": ["airflow_provider_devrev.links.DevRevSessionLink"],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_devrev.hooks.devrev.DevRevHook",
                "hook-name": "DevRev",
                "connection-type": "devrev",
                "ui-field-behaviour": _dashed(UI_FIELD_BEHAVIOUR),
                "conn-fields": CONN_FIELDS,
            }
        ],
    }
