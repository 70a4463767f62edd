"""Helpers shipped with the package so users can test their own setups: speech
synthesis of test requests, and the fakes live beside each engine (`*/fake.py`)."""
