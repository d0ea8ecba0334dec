"""The error every layer may raise for a configuration mistake; the CLI prints it and exits 2.

It lives apart from :mod:`cloudwatcher.config` because the provider registry raises it too (a
target whose SDK extra is missing), and the settings are built from that registry: defined in
either package it would make the two import each other.
"""


class ConfigError(Exception):
    """Bad configuration; the CLI prints the message and exits 2."""
