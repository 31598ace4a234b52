"""Relations between sources: copies, versions, corroboration, differing figures."""
