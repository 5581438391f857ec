"""Building blocks shared by architecture plugins (public API)."""
