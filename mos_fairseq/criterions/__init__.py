"""fairseq criteria for supernets."""
