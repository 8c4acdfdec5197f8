"""The process's one token source and one HTTP client to LiveAll, shared by sends and reads.

One token cache (one Secrets Manager read per max age, not one per use) and one connection
pool (a send and the lookup after it reuse the same TLS connection).
"""

from __future__ import annotations

from functools import cache

from gateway.provider.client import ProviderClient
from gateway.provider.token import TokenSource
from gateway.settings import get_settings


@cache
def get_token_source() -> TokenSource:
    settings = get_settings()
    return TokenSource(settings.token_secret_id, settings.token_max_age_seconds)


@cache
def get_client() -> ProviderClient:
    settings = get_settings()
    return ProviderClient(
        str(settings.provider_base_url),
        connect_timeout=settings.connect_timeout_seconds,
        read_timeout=settings.read_timeout_seconds,
    )
