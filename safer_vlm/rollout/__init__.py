"""Rollout: the safety-aware (reflect-and-correct) group assembly; generators live in `safer_vlm.generation`."""
