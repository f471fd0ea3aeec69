"""Video over time: temporal stabilisation of depth, and the threaded frame pipeline."""
