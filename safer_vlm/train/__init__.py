"""Training: the GRPO recipe and the one adapter that talks to TRL."""
