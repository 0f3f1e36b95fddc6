"""Developer tools (not packaged into the Lambdas)."""
