-- A client proves itself with the key it was given once at registration (a channel id is public
-- and proves nothing). Only the key's SHA-256 is stored: the key is 256 random bits, so a slow
-- password hash would add nothing, and a leaked table reveals no key. Clients registered by an
-- operator at the CLI have none until one is issued.
ALTER TABLE clients ADD COLUMN client_key_hash TEXT CHECK (client_key_hash ~ '^[0-9a-f]{64}$');
