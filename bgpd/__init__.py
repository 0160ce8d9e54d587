"""bgpd: a pure-Python BGP-4 speaker and route reflector."""

__version__ = "0.1.0"
