"""crmclean: raw CRM exports in, one clean deduplicated master customer table out."""

__version__ = "0.1.0"
