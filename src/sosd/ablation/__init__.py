"""The ablation harness: the paper's Tables 1-4 (and our focal-length table) as one command."""
