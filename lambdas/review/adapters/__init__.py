"""Thin adapters: one class per AWS service (the two tables together: a review writes both
in one transaction), clients passed in."""
