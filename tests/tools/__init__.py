"""Tests of the tools package (FHIR client, record summaries)."""
