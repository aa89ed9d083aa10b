-- Who proved, through Telegram, that they own the client's channel: the Telegram user id whose
-- login data was signed for the platform's bot and whom getChatMember named creator or
-- administrator at registration. NULL for clients an operator added without that proof; such a
-- client receives no IPN kept as unroutable (`starter payment route` refuses it).
ALTER TABLE clients ADD COLUMN owner_telegram_id BIGINT CHECK (owner_telegram_id > 0);

CREATE INDEX clients_owner_telegram_id_idx ON clients (owner_telegram_id) WHERE owner_telegram_id IS NOT NULL;

-- Who routed an unroutable IPN (`starter payment route --operator ...`), beside when.
ALTER TABLE unroutable_ipns ADD COLUMN routed_by TEXT CHECK (routed_by IS NULL OR length(routed_by) BETWEEN 1 AND 200);
