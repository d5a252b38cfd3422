"""Latency, a family-neutral stage above the registry: measuring subnets on a device (``measure``),
the datasets they produce (``dataset``), the estimator that predicts them (``estimator``, fitted by
the ``recipes``, chosen and scored by ``evaluation``) and its adaptation to a new device."""
