"""Latency: measuring subnets on a device (``measure``), the datasets they produce (``dataset``),
and the MLP estimator that predicts them (``estimator``, ``evaluation``)."""
