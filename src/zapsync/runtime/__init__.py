"""What runs while the process lives: the context every use case gets, background tasks, the
webhook batcher and the sandbox pump, wired the same way for `serve`, the CLI and workers."""
