"""The demo: shipped real prices, a seeded simulator of agent runs, and `alphatrace demo`."""
