"""Dataset download, import and verification: ``python -m data_prep --help``."""
