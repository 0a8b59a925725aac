"""Package data: the default sample_data shipped with crmclean (read with importlib.resources)."""
