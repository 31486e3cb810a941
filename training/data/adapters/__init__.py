"""Adapters that turn public data sets into the canonical tables (SPEC §3)."""
