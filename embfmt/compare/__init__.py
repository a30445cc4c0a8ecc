"""Comparisons of table versions and matrices: diff, drift, blame, verify-array, plots."""
