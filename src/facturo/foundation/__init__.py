"""Shared Django plumbing below every app: exact money fields, ids, database routing."""
