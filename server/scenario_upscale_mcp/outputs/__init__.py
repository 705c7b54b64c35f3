"""Results: output folders, atomic writes, names, previews."""
