"""Model loading (any Qwen2.5-VL checkpoint) and the offline tiny model for tests and the demo."""
