"""Evaluation: benchmark protocols, scoring runs and reports."""
