"""Kernel-side probes: run a student's objects on grader-chosen inputs and report observations.

Nothing here judges or holds a solution; see docs/ARCHITECTURE.md ("Why probes and judges are split").
"""
