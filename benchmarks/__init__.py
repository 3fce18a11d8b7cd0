"""Benchmarks: this project's training step against idiomatic Keras and PyTorch peers."""
