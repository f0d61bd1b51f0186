"""openbert tokenization."""
