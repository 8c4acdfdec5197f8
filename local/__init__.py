"""Running the gateway on one machine: no AWS account, no Docker."""
