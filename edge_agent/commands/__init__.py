"""Signed commands from the command center: checked (``guard``), carried out and answered
(``runner``)."""
