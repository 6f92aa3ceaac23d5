"""Pure domain: no framework, no I/O."""
