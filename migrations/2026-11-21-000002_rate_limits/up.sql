-- Fixed-window counters for the public RPCs, shared by every replica.
CREATE TABLE rate_limits (
    bucket text PRIMARY KEY,
    window_started_at timestamptz NOT NULL,
    hits integer NOT NULL CHECK (hits >= 0)
);
