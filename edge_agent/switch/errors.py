"""The switch's error, importable without pysnmp."""


class SwitchError(Exception):
    """The switch did not answer or refused; the message names the switch and the request."""
