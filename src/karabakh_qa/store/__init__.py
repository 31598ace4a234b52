"""Where passages are stored: the Store seam and its implementations."""
