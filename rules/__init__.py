"""Package data: the default rules shipped with crmclean (read with importlib.resources)."""
