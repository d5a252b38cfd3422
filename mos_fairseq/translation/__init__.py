"""The translation family (HAT's encoder-decoder SuperTransformer), above core and beside BERT:
space, architecture, supernet, static model, export hooks, task, and the translation tools (BLEU,
retraining, the supernet-standalone gap)."""
