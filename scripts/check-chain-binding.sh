#!/usr/bin/env bash
# Refuses a database whose outbox belongs to another chain than the node at ETH_RPC_URL (two
# checkouts sharing the database `payouts`, each with its own anvil; a chain reset under an old
# database). The worker refuses such a database too; this says it before anything starts.
# Usage: check-chain-binding.sh DATABASE_URL ETH_RPC_URL. A database not bound yet passes.
set -euo pipefail
db_url="$1"; rpc_url="$2"

bound="$(psql "$db_url" -qtAc "SELECT chain_id || ' ' || genesis_hash FROM chain_binding" 2>/dev/null || true)"
[ -n "$bound" ] || exit 0

rpc() { curl -sf -H 'content-type: application/json' -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":$2}" "$rpc_url"; }
chain_hex="$(rpc eth_chainId '[]' | grep -o '"result":"0x[0-9a-fA-F]*"' | cut -d'"' -f4)"
genesis="$(rpc eth_getBlockByNumber '["0x0", false]' | grep -o '"hash":"0x[0-9a-fA-F]\{64\}"' | cut -d'"' -f4 | tr 'A-F' 'a-f')"
[ -n "$chain_hex" ] && [ -n "$genesis" ] || { echo "error: cannot read the chain id and genesis block of $rpc_url" >&2; exit 1; }
node="$((16#${chain_hex#0x})) $genesis"

if [ "$bound" != "$node" ]; then
  db_name="${db_url##*/}"; db_name="${db_name%%\?*}"
  cat >&2 <<MSG
error: the database $db_name belongs to chain id ${bound% *} (genesis ${bound#* }),
       but ETH_RPC_URL ($rpc_url) is chain id ${node% *} (genesis ${node#* }).
       Its transfers and nonces are of that other chain (another checkout's stack, or a chain that
       was reset). Give this checkout a database of its own: set DATABASE_URL in .env to, say,
       ${db_url%/*}/${db_name}_$(basename "$(cd "$(dirname "$0")/.." && pwd)" | tr -c 'a-zA-Z0-9_\n' '_')
       or point ETH_RPC_URL at the chain this database was used with.
MSG
  exit 1
fi
