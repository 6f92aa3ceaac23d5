"""leadflow: the lead lifecycle system."""

__version__ = "0.1.0"
