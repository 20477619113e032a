"""Generation backends behind one interface: the real fal queue and an offline renderer."""

from .base import Backend, MaybeAccepted, QueueStatus, RequestGone, TransientError

__all__ = ["Backend", "MaybeAccepted", "QueueStatus", "RequestGone", "TransientError", "make_backend"]


def make_backend(name: str, **options) -> Backend:
    """``fal`` (the real fal_client; also the emulator via FAL_QUEUE_RUN_HOST) or ``local``."""
    if name == "local":
        from .local import LocalBackend

        return LocalBackend(**options)
    if name in ("fal", "emulator"):
        from .fal import FalBackend

        return FalBackend(**options)
    from ..errors import InvalidInput, Problem

    raise InvalidInput([Problem("backend", "name", f"unknown backend {name!r}; allowed: local, fal, emulator")])
