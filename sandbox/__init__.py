"""A fake LiveAll provider on loopback, for integration tests, the local runner and benchmarks.

Standard library only: the local runner can start it without the Lambda dependencies.
"""

from sandbox.model import FAULT_KINDS, Fault, LedgerEntry
from sandbox.rules import ERROR_MESSAGES, error_message
from sandbox.server import ProviderSandbox

__all__ = ["ERROR_MESSAGES", "FAULT_KINDS", "Fault", "LedgerEntry", "ProviderSandbox", "error_message"]
