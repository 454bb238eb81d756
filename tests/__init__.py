"""Firebreak's tests, laid out like the package (a package, so ``tests.helpers`` imports)."""
