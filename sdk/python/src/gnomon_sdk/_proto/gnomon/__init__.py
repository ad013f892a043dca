"""Generated copy of the Gnomon contract (do not edit; run `python sdk/python/gen.py`)."""
