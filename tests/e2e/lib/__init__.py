"""Helpers of the sfbridge end-to-end tests (see tests/e2e/README.md)."""
