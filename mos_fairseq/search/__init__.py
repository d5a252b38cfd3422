"""Search: constraints, subnet fitness inside a supernet, HAT's evolutionary search, its outputs."""
