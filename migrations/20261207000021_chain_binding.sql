-- The chain this database's outbox belongs to (DESIGN: "the ledger belongs to one chain"). Nonces,
-- receipts and balances mean something on one chain only: a database shared by two checkouts,
-- each with its own anvil, or a node reset under a running stack, would hand out nonces after
-- transfers the chain never saw. The first hot wallet to connect records the node's chain id and
-- genesis hash here; every later connection and every signing compares the node with it and
-- refuses another chain, naming both (activities::ethereum::chain_binding).
CREATE TABLE chain_binding (
    -- One row: a database belongs to one chain.
    only_row      BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    chain_id      BIGINT NOT NULL CHECK (chain_id > 0),
    genesis_hash  TEXT NOT NULL CHECK (genesis_hash ~ '^0x[0-9a-f]{64}$'),
    bound_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Moving a ledger to another chain is not an update: it is a new database.
CREATE FUNCTION chain_binding_is_permanent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'chain_binding cannot be changed: this database''s outbox belongs to chain % (genesis %); use a new database for another chain',
        OLD.chain_id, OLD.genesis_hash;
END $$;
CREATE TRIGGER chain_binding_permanent BEFORE UPDATE OR DELETE ON chain_binding
    FOR EACH ROW EXECUTE FUNCTION chain_binding_is_permanent();
