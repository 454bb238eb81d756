"""One bot process: settings, wiring, Socket Mode, the reconciler, health and logs.

`runtime.wiring` is the only place a process is put together.
"""
