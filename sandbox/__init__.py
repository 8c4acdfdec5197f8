"""A fake LiveAll provider on loopback, for integration tests, the local runner and benchmarks.

Standard library only: the local runner can start it without the Lambda dependencies.
sandbox/README.md describes its endpoints, delivery model, control API and faults.
"""

from sandbox.delivery import STATUS_TEXTS, Status
from sandbox.model import ENDPOINTS, FAULT_KINDS, Fault, LedgerEntry
from sandbox.rules import ERROR_MESSAGES, error_message
from sandbox.server import ProviderSandbox

__all__ = [
    "ENDPOINTS",
    "ERROR_MESSAGES",
    "FAULT_KINDS",
    "STATUS_TEXTS",
    "Fault",
    "LedgerEntry",
    "ProviderSandbox",
    "Status",
    "error_message",
]
