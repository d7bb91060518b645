"""AlignScore in its own environment: the venv (environment), the weights folder (weights), the
worker it runs (worker, JSON lines on stdin/stdout) and the client `bench score` uses (client)."""
