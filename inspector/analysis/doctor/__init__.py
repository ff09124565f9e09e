"""``cfs-inspect doctor``: is composefs actually in use on this host, and if not, why?

Entry point :func:`run_doctor` returns a :class:`DoctorReport` (verdict, findings, effective
configuration, probe facts, store summaries) that the CLI, ``--json`` and the TUI's Health
screen all render without re-deriving anything.
"""

from .model import ConfigValue, DoctorReport, Finding, StorageConfig
from .report import run_doctor

__all__ = ["run_doctor", "DoctorReport", "Finding", "ConfigValue", "StorageConfig"]
