"""The `bgpd` command (click): ``bgpd.cli.main:main``."""
