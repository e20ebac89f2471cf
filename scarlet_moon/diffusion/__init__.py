"""Diffusion maths, backend-free: noise schedules, samplers, guidance, noise streams and the
editing modes as denoiser wrappers. Everything here is arithmetic on numpy arrays or torch
tensors alike; nothing imports torch."""
