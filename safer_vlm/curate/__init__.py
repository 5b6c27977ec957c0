"""Curation: dedup, decontamination against eval sets, and QI-Box selection of a training set."""
