"""Test support: Go frp binaries, process control and local services for end-to-end tests.

Importable as ``support`` from tests (pytest puts ``tests/`` on ``sys.path`` because
``tests/conftest.py`` lives there) and from ``bench/`` (which inserts ``tests/`` itself).
"""
