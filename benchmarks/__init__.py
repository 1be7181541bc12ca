"""Benchmarks of ``userdir`` against its emulators served over real HTTP.

Run them with ``python -m benchmarks`` (``--quick`` for a short run, ``--only NAME`` for
one benchmark, ``--strict`` to exit non-zero when a target is missed). Each emulator is
served by ``python -m userdir.testing serve`` in a separate process, so the CPU figures
measured here are the client's own. Every benchmark runs its baseline (a plain
sequential ``httpx`` loop, or notion-client) in the same run, side by side, and the
report compares medians.
"""
