"""Package data: the default expectations shipped with crmclean (read with importlib.resources)."""
