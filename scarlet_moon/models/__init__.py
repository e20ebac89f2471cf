"""The model: its network (unet), the network config, the card that describes it (torch-free) and the
safetensors checkpoints that hold it."""
