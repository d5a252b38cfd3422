"""Corpora: the built-in synthetic corpus and raw-text -> fairseq-binary preparation."""
