"""LDFusion: a CLIP language-driven fusion loss (notebooks 40-41)."""
