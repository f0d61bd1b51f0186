"""openbert training."""
