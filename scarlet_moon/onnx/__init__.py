"""ONNX export of a checkpoint (torch side) and the fused sampler-step graph around it."""
