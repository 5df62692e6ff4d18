"""Tests that the benchmark scripts run and check what they claim (never their timings)."""
