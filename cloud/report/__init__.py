"""The monthly availability report for a maintenance contract: per district, site and camera,
a calendar month in a local timezone, maintenance listed; CSV and a printable page."""
