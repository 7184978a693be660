"""The pantau HTTP API: fleet state, availability and maintenance windows."""
