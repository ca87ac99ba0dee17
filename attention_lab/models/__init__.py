"""Toy models the chapters train, built on the layers of :mod:`attention_utils`."""
