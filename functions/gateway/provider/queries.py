"""LiveAll's read endpoints, asked with the current token: message status, message history, balance.

Their plain-text answers are read by gateway.provider.statuses, gateway.provider.history and
gateway.provider.balance; an `Error: <code> - <message>` answer goes through the failure
taxonomy (a refused token is re-read from the secret once, as for sends). A
malformed answer is `provider-failed`: a read can always be asked again.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TypeVar

from gateway.failures import TOKEN_CODES, Failure, GatewayError, classify_provider_code
from gateway.observability import logger
from gateway.provider.balance import Balance, parse_balance_answer
from gateway.provider.client import ProviderClient
from gateway.provider.history import HistoryRecord, parse_history_answer
from gateway.provider.statuses import ProviderAnswerError, StatusRecord, parse_status_answer
from gateway.provider.token import TokenSource

T = TypeVar("T")
# "No submitted SMS found": none of the ids asked about is the account's.
NO_SUCH_MESSAGES = 43
GET_SMS_STATUS = "GetSMSStatus"
GET_SMS_HISTORY = "GetSMSHistory"
GET_ACCOUNT_BALANCE = "GetAccountBalance"


class ProviderQueries:
    """Asks LiveAll's read endpoints; every failure comes out as a GatewayError of the right class."""

    def __init__(self, token_source: TokenSource, client: ProviderClient) -> None:
        self.token_source = token_source
        self.client = client

    def statuses(self, smsids: list[str], *, seconds_left: float | None = None) -> list[StatusRecord]:
        """The status of each id LiveAll knows (it leaves the others out); [] when it knows none."""
        try:
            return self._ask(GET_SMS_STATUS, {"smsids": ",".join(smsids)}, parse_status_answer, seconds_left)
        except GatewayError as error:
            if error.provider_code == NO_SUCH_MESSAGES:
                return []
            raise

    def history(self, fields: dict[str, str], *, seconds_left: float | None = None) -> list[HistoryRecord]:
        """GetSMSHistory with `fields` (`submit_date` and filters): one record per message, [] for none."""
        return self._ask(GET_SMS_HISTORY, fields, parse_history_answer, seconds_left)

    def balance(self, country_prefix: str | None = None, *, seconds_left: float | None = None) -> Balance:
        fields = {"countryprefix": country_prefix} if country_prefix else {}
        return self._ask(GET_ACCOUNT_BALANCE, fields, parse_balance_answer, seconds_left)

    def _ask(
        self,
        endpoint: str,
        fields: dict[str, str],
        read: Callable[[bytes], T],
        seconds_left: float | None,
    ) -> T:
        for refreshed in (False, True):
            token = self.token_source.get(refresh=refreshed)
            body = self.client.read(endpoint, {"apitoken": token, **fields}, seconds_left=seconds_left)
            try:
                return read(body)
            except ProviderAnswerError as error:
                if error.code in TOKEN_CODES and not refreshed:
                    logger.warning("provider refused the token; reading the secret again")
                    continue
                raise _failure(endpoint, error) from None
        raise AssertionError("unreachable: the second pass returns or raises")


def _failure(endpoint: str, error: ProviderAnswerError) -> GatewayError:
    if error.code is None:
        return GatewayError(
            Failure.PROVIDER_FAILED, f"The provider's {endpoint} answer could not be read: {error.message}."
        )
    return GatewayError(
        classify_provider_code(error.code),
        f"The provider refused {endpoint}: {error.message or 'no message'} (code {error.code}).",
        provider_code=error.code,
        provider_message=error.message,
    )


@cache
def get_queries() -> ProviderQueries:
    """The read endpoints, sharing the senders' token cache and connection pool."""
    from gateway.provider.connection import get_client, get_token_source

    return ProviderQueries(get_token_source(), get_client())
