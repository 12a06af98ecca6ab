"""Market data: import of bars, ticks and funding files, and symbol aliases/resolution."""
