"""Building blocks: elastic (sliceable) layers for supernets and their static counterparts."""
