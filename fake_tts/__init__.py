"""A stand-in for the TTS/identity service's round-robin endpoint, for the demo, tests and benchmarks."""
