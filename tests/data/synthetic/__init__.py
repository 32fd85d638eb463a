"""Tests of stockcast.data.synthetic, one file per module.

A package so that its test_supply.py and tests/data/test_supply.py can share a name.
"""
