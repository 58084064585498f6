"""The OpenAI-compatible HTTP service: a thin ASGI layer over `Router`."""
