"""The LiveAll account: its balance, what an SMS costs, and the scheduled check that warns of it."""
