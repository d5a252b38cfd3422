"""Building blocks, the layer above base and below core: elastic (sliceable) layers for supernets,
their static counterparts, MoS experts and routers."""
