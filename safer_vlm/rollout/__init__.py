"""Rollout: generators and the safety-aware (reflect-and-correct) group assembly."""
