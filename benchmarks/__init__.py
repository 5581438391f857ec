"""ganzoo's benchmark suite: ``python -m benchmarks`` (see ``benchmarks/README.md``).

For every registered architecture it times sampling (batch 1, 64, 256) and a
training step, each paired with a plain baseline timed in the same process in
interleaved rounds, and writes ``benchmarks.json`` and ``benchmarks.md``.
"""
from .suite import main, run_suite

__all__ = ["main", "run_suite"]
