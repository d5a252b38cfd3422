"""fairseq models: the SuperTransformer supernet, its one-subnet view, and static models."""
