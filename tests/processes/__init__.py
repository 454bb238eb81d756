"""Real child processes: ``python -m bolt_app`` bots and workers, SIGTERM and SIGKILL."""
