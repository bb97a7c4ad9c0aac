"""A handler installed for a while on the signals a process does not ignore, and the previous
handlers put back after: shared by ``slm-bench run`` (``cli.main``), its owner
(``process_group.run_owned``) and a search's stop (``stop_signals.stop_first``). A signal the
process ignores (``nohup``, a script's background job) stays ignored, and so in the children it
starts."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

Handler = Callable[[int, FrameType | None], Any]


@contextmanager
def handling(signums: tuple[int, ...], handler: Handler) -> Iterator[dict[int, Any]]:
    """Inside: ``handler`` for each of ``signums`` not ignored; yields their previous handlers
    (by signal), which are back on the way out."""
    previous = {s: signal.getsignal(s) for s in signums if signal.getsignal(s) != signal.SIG_IGN}
    for signum in previous:
        signal.signal(signum, handler)
    try:
        yield previous
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
