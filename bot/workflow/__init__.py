"""The pure core: incident model, steps, policy and the state machine. No I/O here."""
