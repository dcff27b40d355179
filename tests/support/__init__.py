"""Helpers the tests share: real files, tiny models, assembled services."""
