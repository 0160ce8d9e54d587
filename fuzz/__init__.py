"""Fuzz targets and drivers for bgpd (see fuzz/README.md)."""
