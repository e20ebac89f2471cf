"""Quality figures of a model (`sm eval`): Frechet distance, conditional accuracy, copies, pixel statistics."""
