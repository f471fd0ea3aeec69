"""Getting depth out of this package: 3D files from a depth map (geometry.py, numpy only) and the
network as an ONNX graph (onnx.py, needs the optional `[onnx]` extra; imported only when used)."""
