-- Tables of the embedded datasource `main` (DATA/switchboard.db), created when it is
-- first used. Statements end with ';' at the end of a line.

-- One row per ACH entry, written by Routes/ach.yaml. The key is the file and the entry's
-- trace number, so a file processed again after a crash updates its own rows.
CREATE TABLE IF NOT EXISTS ach_entries (
    file TEXT NOT NULL,
    trace_number TEXT NOT NULL,
    transaction_code INTEGER NOT NULL,
    routing_number TEXT NOT NULL,
    account TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    name TEXT NOT NULL,
    addenda TEXT,
    PRIMARY KEY (file, trace_number)
);
