"""DCMIF: dictionary-guided fusion when the infrared image is missing (notebooks 20-22)."""
