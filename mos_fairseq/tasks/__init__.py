"""fairseq tasks for supernet training and use."""
