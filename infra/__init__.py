"""The viber-gateway CDK app: configuration, one construct per concern, and the stack."""
