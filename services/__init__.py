"""The reference services and their shared runtime."""
