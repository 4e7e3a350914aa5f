"""Thin adapters: one class per AWS service, clients passed in or created lazily."""
