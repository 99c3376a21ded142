"""Tools for the repository itself: screenshots of the demo page (run `python scripts/screenshots.py`)."""
