"""Synthetic data sets and example inputs, generated offline from fixed seeds."""
