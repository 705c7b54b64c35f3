"""Jobs: the ledger, submission without double billing, watching, saving results."""
