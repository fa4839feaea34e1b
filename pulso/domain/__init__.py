"""Domain: the event envelope, typed payloads, Brazilian validators and money."""
