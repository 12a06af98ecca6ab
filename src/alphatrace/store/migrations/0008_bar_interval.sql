-- Which bar interval priced each leg and run (issue 13, item 18): with 15m and 1h bars both
-- imported the same signal prices differently, so legs and the ledger say which.
-- `bar_interval` is the interval's label as `alphatrace market symbols` shows it ('15m',
-- '1h', 'tick'); NULL for legs not priced against bars (unpriced, FLAT). Existing rows get
-- NULL here: the next `alphatrace reconcile` re-prices the non-FLAT legs that lack it (once)
-- and rebuilds the ledger, which fills the column everywhere.
ALTER TABLE legs ADD COLUMN bar_interval VARCHAR;
ALTER TABLE ledger ADD COLUMN bar_interval VARCHAR;
