"""Generation: a request (labels, seed, options), the one chunked loop every caller runs, finishing,
and sharding the chunks over torchrun ranks."""
