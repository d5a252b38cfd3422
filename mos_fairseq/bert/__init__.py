"""The BERT side: search spaces and shapes, the BERT supernet, the masked-LM task, export."""
