"""Tooling that reads saved benchmark runs: compare, gate, diff, ab, baseline, history,
report, fleet, publish (``python -m benchruns``); studies/ makes the project's own docs.

It never imports torch or TensorFlow (runs are plain pytest-benchmark JSON), so it
starts fast and works on any machine; scipy and matplotlib are imported only by the
commands that need them.
"""
