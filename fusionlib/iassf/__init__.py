"""IASSF: joint dehazing and fusion with prompts (notebooks 30-32)."""
