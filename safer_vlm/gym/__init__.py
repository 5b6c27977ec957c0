"""A synthetic, seeded multimodal safety gym for the demo and learning tests."""
