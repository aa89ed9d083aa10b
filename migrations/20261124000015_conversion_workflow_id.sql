-- The run that converted a batch, so the admin console links each conversion to its workflow
-- in the Temporal UI. NULL for batches claimed before this column existed.
ALTER TABLE batch_conversions ADD COLUMN workflow_id TEXT CHECK (workflow_id <> '');
