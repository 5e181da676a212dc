"""Side-by-side benchmarks: each prints a ratio against a reference measured in the same run."""
