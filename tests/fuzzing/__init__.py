"""A seeded fuzzer for the example app: ``scripts/fuzz`` (long) and tests/test_fuzz.py (short).

``inputs`` makes the requests (header values, form fields, path ids, query strings,
bodies); ``harness`` sends them to the example app in process and counts what answered
5xx and what left a traceback in the log.
"""
