"""The cancel stage's former home, kept because ``scripts/cancel.py`` imports it from here: the
on-demand stages live in ``steps/audit.py``, ``checkout.py``, ``publish.py`` and ``cancel.py``."""

from slm_bench.steps.cancel import cancel_remote

__all__ = ["cancel_remote"]
