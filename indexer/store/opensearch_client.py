"""A client for the cluster at OPENSEARCH_URL and one clear sentence per kind of failure:
what the OpenSearch backend and the Learning-to-Rank upload (a cluster's own, whatever
backend serves) both connect with."""

from __future__ import annotations

from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import (
    AuthenticationException,
    AuthorizationException,
    ConnectionError,
    ConnectionTimeout,
    NotFoundError,
    RequestError,
    TransportError,
)

from indexer.settings import OpenSearchSettings
from indexer.store.base import BackendUnavailable


def connect(settings: OpenSearchSettings) -> OpenSearch:
    return OpenSearch(
        hosts=[settings.url],
        http_auth=(settings.user, settings.password) if settings.user else None,
        verify_certs=settings.verify_certs,
        ca_certs=settings.ca_certs,
        ssl_show_warn=settings.verify_certs,
        timeout=settings.timeout,
        max_retries=2,
        retry_on_timeout=True,
    )


def describe(exc: Exception, settings: OpenSearchSettings) -> str:
    """One clear message per kind of cluster failure."""
    if isinstance(exc, (ConnectionError, ConnectionTimeout)):
        return f"cannot reach OpenSearch at {settings.url}: {getattr(exc, 'error', exc)}"
    if isinstance(exc, AuthenticationException):
        return f"OpenSearch at {settings.url} refused the credentials (401): check OPENSEARCH_USER / OPENSEARCH_PASSWORD"
    if isinstance(exc, AuthorizationException):
        return f"OpenSearch at {settings.url} denied the request (403): the user lacks a permission for {settings.alias!r}"
    if isinstance(exc, NotFoundError):
        return f"index or alias {settings.alias!r} does not exist on {settings.url}: run `python -m indexer reindex`"
    if isinstance(exc, RequestError):
        reason = exc.info.get("error", {}).get("reason") if isinstance(exc.info, dict) else exc.error
        return f"OpenSearch rejected the request (mapping conflict or bad query): {reason}"
    if isinstance(exc, TransportError):
        return f"OpenSearch error {exc.status_code}: {exc.error}"
    return str(exc)


def guarded(settings: OpenSearchSettings, func: Any, *args: Any, passing: tuple[type[Exception], ...] = (),
            **kwargs: Any) -> Any:
    """`func(*args, **kwargs)`, a cluster failure raised as BackendUnavailable with its one
    sentence; `passing`: the client errors the caller handles itself (a version conflict)."""
    try:
        return func(*args, **kwargs)
    except passing:
        raise
    except TransportError as exc:
        raise BackendUnavailable(describe(exc, settings)) from exc
