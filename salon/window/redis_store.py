"""The window's state in Redis: each update one Lua script, one atomic server-side step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from salon.clock import Clock, from_us
from salon.identity import ClientRef
from salon.window.rules import (
    ENTRY_ORGANIC,
)
from salon.window.state import (
    DAY_US,
    FEP_US,
    ParkedMessage,
    SessionState,
    SessionStore,
    _dump_item,
    _load_item,
)

__all__ = ["RedisSessionStore"]


_LUA_ENSURE = """
local k = KEYS[1]
redis.call('HSET', k, 'pn', ARGV[1], 'ck', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', k, 'uid', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', k, 'wa', ARGV[4]) end
if redis.call('HEXISTS', k, 'N') == 0 then redis.call('HSET', k, 'N', '0') end
"""


_LUA_RESULT = """
return {redis.call('HGETALL', KEYS[1]), redis.call('LLEN', KEYS[2])}
"""


_LUA_IDS = _LUA_ENSURE + _LUA_RESULT


# ARGV: 1 pn, 2 ck, 3 uid, 4 wa, 5 t, 6 message id, 7 entry point, 8 referral, 9 day, 10 fep
_LUA_INBOUND = (
    _LUA_ENSURE
    + """
local t = tonumber(ARGV[5])
local day = tonumber(ARGV[9])
local fep = tonumber(ARGV[10])
local v = redis.call('HMGET', k, 'L', 'S', 'P', 'F', 'R', 'FR')
local L = tonumber(v[1])
local S = tonumber(v[2])
local P = tonumber(v[3])
local F = tonumber(v[4])
local R = tonumber(v[5])
local FR = tonumber(v[6])
local advanced = 0
local new = 0
if (not L) or t > L then
  advanced = 1
  if (not L) or t >= L + day or (F and F >= L and t > F) then
    new = 1
    if L then redis.call('HSET', k, 'P', v[1]) else redis.call('HDEL', k, 'P') end
    redis.call('HSET', k, 'S', ARGV[5], 'ep', ARGV[7])
    redis.call('HINCRBY', k, 'N', 1)
  end
  redis.call('HSET', k, 'L', ARGV[5], 'lid', ARGV[6])
  if F and t > F then redis.call('HDEL', k, 'F', 'Fc') end
elseif S and t < S and t > S - day and ((not P) or t >= P + day) then
  redis.call('HSET', k, 'S', ARGV[5])
end
if ARGV[8] == '1' and ((not R) or (FR and t >= FR + fep) or ((not FR) and t >= R + day)) then
  redis.call('HSET', k, 'R', ARGV[5])
  redis.call('HDEL', k, 'FR')
end
return {advanced, redis.call('HGETALL', k), redis.call('LLEN', KEYS[2])}
"""
)


# ARGV: 1-4 identity, 5 t, 6 day
_LUA_REPLY = (
    _LUA_ENSURE
    + """
local t = tonumber(ARGV[5])
local v = redis.call('HMGET', k, 'R', 'FR')
local R = tonumber(v[1])
local FR = tonumber(v[2])
if R and t >= R and t < R + tonumber(ARGV[6]) and ((not FR) or t < FR) then
  redis.call('HSET', k, 'FR', ARGV[5])
end
"""
    + _LUA_RESULT
)


# ARGV: 1-4 identity, 5 t, 6 code
_LUA_CLOSED = (
    _LUA_ENSURE
    + """
local t = tonumber(ARGV[5])
local v = redis.call('HMGET', k, 'L', 'F')
local L = tonumber(v[1])
local F = tonumber(v[2])
if ((not L) or t >= L) and ((not F) or t > F) then
  redis.call('HSET', k, 'F', ARGV[5], 'Fc', ARGV[6])
end
"""
    + _LUA_RESULT
)


# ARGV: 1-4 identity, 5 t
_LUA_NUDGED = (
    _LUA_ENSURE
    + """
local G = tonumber(redis.call('HGET', k, 'G'))
if (not G) or tonumber(ARGV[5]) > G then redis.call('HSET', k, 'G', ARGV[5]) end
"""
    + _LUA_RESULT
)


# KEYS: 1 state, 2 list, 3 id set; ARGV: 1-4 identity, 5 item id, 6 item json
_LUA_PARK = (
    _LUA_ENSURE
    + """
if redis.call('SADD', KEYS[3], ARGV[5]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[6])
  return 1
end
return 0
"""
)


# KEYS: 1 list, 2 id set
_LUA_TAKE = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1], KEYS[2])
return items
"""


# KEYS: 1 delivery lock, 2 list; ARGV: 1 token, 2 lease (ms). The items while the lock is
# ours (nothing when another delivery holds them).
_LUA_CLAIM_PARKED = """
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  return redis.call('LRANGE', KEYS[2], 0, -1)
end
return {}
"""


# KEYS: 1 list, 2 id set; ARGV: 1 item id
_LUA_REMOVE_PARKED = """
for _, raw in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if tostring(cjson.decode(raw)['id']) == ARGV[1] then
    redis.call('LREM', KEYS[1], 1, raw)
    break
  end
end
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""


# KEYS: 1 delivery lock; ARGV: 1 token
_LUA_RELEASE_PARKED = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


# ARGV: 1 prefix (ends with ':'), then per client: phone_number_id, alias 1, alias 2 ('' if
# absent). Returns one string per client: '' when unknown, else the fields of _BULK_FIELDS
# joined by \x1f, then the parked count.
_LUA_GET_MANY = """
local prefix = ARGV[1]
local out = {}
local n = 0
for i = 2, #ARGV, 3 do
  local pn = ARGV[i]
  local key = false
  if ARGV[i + 1] ~= '' then key = redis.call('GET', prefix .. 'a:' .. pn .. ':' .. ARGV[i + 1]) end
  if (not key) and ARGV[i + 2] ~= '' then
    key = redis.call('GET', prefix .. 'a:' .. pn .. ':' .. ARGV[i + 2])
  end
  n = n + 1
  if key then
    local v = redis.call('HMGET', prefix .. 's:' .. pn .. ':' .. key,
      'pn', 'ck', 'uid', 'wa', 'L', 'lid', 'S', 'P', 'N', 'ep', 'R', 'FR', 'F', 'Fc', 'G')
    if v[2] then
      for j = 1, 15 do if not v[j] then v[j] = '' end end
      v[16] = tostring(redis.call('LLEN', prefix .. 'q:' .. pn .. ':' .. key))
      out[n] = table.concat(v, string.char(31))
    else
      out[n] = ''
    end
  else
    out[n] = ''
  end
end
return out
"""


def _state_from_joined(joined: str) -> SessionState | None:
    if not joined:
        return None
    pn, ck, uid, wa, L, lid, S, P, N, ep, R, FR, F, Fc, G, parked = joined.split("\x1f")
    return SessionState(
        phone_number_id=pn,
        client_key=ck,
        user_id=uid or None,
        wa_id=wa or None,
        last_inbound_at=from_us(L) if L else None,
        last_inbound_id=lid or None,
        session_started_at=from_us(S) if S else None,
        prior_inbound_at=from_us(P) if P else None,
        session_count=int(N) if N else 0,
        entry_point=ep or ENTRY_ORGANIC,
        referral_at=from_us(R) if R else None,
        first_reply_at=from_us(FR) if FR else None,
        window_closed_at=from_us(F) if F else None,
        window_closed_code=int(Fc) if Fc else None,
        nudged_at=from_us(G) if G else None,
        parked_count=int(parked),
    )


def _state_from_hash(flat: Sequence[Any], parked: int) -> SessionState | None:
    if not flat:
        return None
    h: dict[str, str] = {}
    it = iter(flat)
    for name, value in zip(it, it, strict=True):
        h[name.decode() if isinstance(name, bytes) else name] = (
            value.decode() if isinstance(value, bytes) else value
        )
    code = h.get("Fc")
    return SessionState(
        phone_number_id=h.get("pn", ""),
        client_key=h.get("ck", ""),
        user_id=h.get("uid") or None,
        wa_id=h.get("wa") or None,
        last_inbound_at=from_us(h.get("L")),
        last_inbound_id=h.get("lid") or None,
        session_started_at=from_us(h.get("S")),
        prior_inbound_at=from_us(h.get("P")),
        session_count=int(h.get("N") or 0),
        entry_point=h.get("ep") or ENTRY_ORGANIC,
        referral_at=from_us(h.get("R")),
        first_reply_at=from_us(h.get("FR")),
        window_closed_at=from_us(h.get("F")),
        window_closed_code=int(code) if code else None,
        nudged_at=from_us(h.get("G")),
        parked_count=int(parked),
    )


class RedisSessionStore(SessionStore):
    """Session state in Redis (``redis.asyncio``); every update is one Lua script."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "salon:session",
        clock: Clock | None = None,
        client: Any = None,
    ) -> None:
        super().__init__(clock)
        import redis.asyncio as aioredis

        self.prefix = prefix
        self._client = client or aioredis.Redis.from_url(url, decode_responses=True)
        self._own_client = client is None
        self._inbound_script = self._client.register_script(_LUA_INBOUND)
        self._reply_script = self._client.register_script(_LUA_REPLY)
        self._closed_script = self._client.register_script(_LUA_CLOSED)
        self._nudged_script = self._client.register_script(_LUA_NUDGED)
        self._park_script = self._client.register_script(_LUA_PARK)
        self._take_script = self._client.register_script(_LUA_TAKE)
        self._claim_parked_script = self._client.register_script(_LUA_CLAIM_PARKED)
        self._remove_parked_script = self._client.register_script(_LUA_REMOVE_PARKED)
        self._release_parked_script = self._client.register_script(_LUA_RELEASE_PARKED)
        self._get_many_script = self._client.register_script(_LUA_GET_MANY)
        self._ids_script = self._client.register_script(_LUA_IDS)

    @property
    def redis(self) -> Any:
        return self._client

    # key layout
    def state_key(self, pnid: str, key: str) -> str:
        return f"{self.prefix}:s:{pnid}:{key}"

    def alias_key(self, pnid: str, alias: str) -> str:
        return f"{self.prefix}:a:{pnid}:{alias}"

    def parked_key(self, pnid: str, key: str) -> str:
        return f"{self.prefix}:q:{pnid}:{key}"

    def parked_ids_key(self, pnid: str, key: str) -> str:
        return f"{self.prefix}:qi:{pnid}:{key}"

    def parked_lock_key(self, pnid: str, key: str) -> str:
        return f"{self.prefix}:ql:{pnid}:{key}"

    async def initialize(self) -> None:
        """Load the Lua scripts (pipelines use EVALSHA) and check the server answers."""
        for script in (
            self._inbound_script, self._reply_script, self._closed_script,
            self._nudged_script, self._park_script, self._take_script,
            self._get_many_script, self._ids_script, self._claim_parked_script,
            self._remove_parked_script, self._release_parked_script,
        ):
            script.sha = await self._client.script_load(script.script)

    async def close(self) -> None:
        if self._own_client:
            await self._client.close()
            await self._client.connection_pool.disconnect()

    async def clear(self) -> None:
        """Delete every key under this store's prefix (tests, benches)."""
        batch: list[str] = []
        async for name in self._client.scan_iter(match=f"{self.prefix}:*", count=1000):
            batch.append(name)
            if len(batch) >= 1000:
                await self._client.delete(*batch)
                batch = []
        if batch:
            await self._client.delete(*batch)

    def _identity(self, ref: ClientRef, key: str) -> list[str]:
        return [ref.phone_number_id, key, ref.user_id or "", ref.wa_id or ""]

    def _two(self, pnid: str, key: str) -> list[str]:
        return [self.state_key(pnid, key), self.parked_key(pnid, key)]

    async def _lookup(self, pnid: str, aliases: Sequence[str]) -> dict[str, str]:
        values = await self._client.mget([self.alias_key(pnid, a) for a in aliases])
        return {a: v for a, v in zip(aliases, values, strict=True) if v is not None}

    async def _link(self, pnid: str, mapping: Mapping[str, str], force: bool = False) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for alias, key in mapping.items():
                pipe.set(self.alias_key(pnid, alias), key, nx=not force)
            await pipe.execute()

    async def _load(self, pnid: str, key: str) -> SessionState | None:
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.state_key(pnid, key))
            pipe.llen(self.parked_key(pnid, key))
            mapping, parked = await pipe.execute()
        if not mapping:
            return None
        flat = [x for pair in mapping.items() for x in pair]
        return _state_from_hash(flat, parked)

    async def _load_many(
        self, refs: Sequence[ClientRef], chunk: int = 1000
    ) -> list[SessionState | None]:
        """One script call per ``chunk`` clients: aliases resolved and fields read
        server-side, one compact string per client on the wire.
        """
        out: list[SessionState | None] = []
        prefix = f"{self.prefix}:"
        for start in range(0, len(refs), chunk):
            args: list[str] = [prefix]
            for ref in refs[start : start + chunk]:
                args.append(ref.phone_number_id)
                args.append(f"u:{ref.user_id}" if ref.user_id else "")
                args.append(f"w:{ref.wa_id}" if ref.wa_id else "")
            joined = await self._get_many_script(keys=[], args=args)
            out.extend(_state_from_joined(item) for item in joined)
        return out

    async def _inbound(
        self, ref: ClientRef, key: str, t_us: int, message_id: str | None, entry_point: str,
        referral: bool,
    ) -> tuple[bool, SessionState]:
        pnid = ref.phone_number_id
        advanced, flat, parked = await self._inbound_script(
            keys=self._two(pnid, key),
            args=[*self._identity(ref, key), str(t_us), message_id or "", entry_point,
                  "1" if referral else "0", str(DAY_US), str(FEP_US)],
        )
        state = _state_from_hash(flat, parked)
        assert state is not None
        return bool(advanced), state

    async def _run_simple(self, script: Any, ref: ClientRef, key: str, *extra: str) -> SessionState:
        flat, parked = await script(
            keys=self._two(ref.phone_number_id, key), args=[*self._identity(ref, key), *extra]
        )
        state = _state_from_hash(flat, parked)
        assert state is not None
        return state

    async def _reply(self, ref: ClientRef, key: str, t_us: int) -> SessionState:
        return await self._run_simple(self._reply_script, ref, key, str(t_us), str(DAY_US))

    async def _set_ids(self, ref: ClientRef, key: str) -> SessionState:
        return await self._run_simple(self._ids_script, ref, key)

    async def _closed(self, ref: ClientRef, key: str, t_us: int, code: int) -> SessionState:
        return await self._run_simple(self._closed_script, ref, key, str(t_us), str(code))

    async def _nudged(self, ref: ClientRef, key: str, t_us: int) -> SessionState:
        return await self._run_simple(self._nudged_script, ref, key, str(t_us))

    async def _park(
        self, ref: ClientRef, key: str, item_id: str, payload: Any, t_us: int
    ) -> bool:
        pnid = ref.phone_number_id
        added = await self._park_script(
            keys=[self.state_key(pnid, key), self.parked_key(pnid, key),
                  self.parked_ids_key(pnid, key)],
            args=[*self._identity(ref, key), item_id, _dump_item(item_id, payload, t_us)],
        )
        return bool(added)

    async def _peek(self, pnid: str, key: str) -> list[ParkedMessage]:
        raw = await self._client.lrange(self.parked_key(pnid, key), 0, -1)
        return [_load_item(item) for item in raw]

    async def _take(self, pnid: str, key: str) -> list[ParkedMessage]:
        raw = await self._take_script(
            keys=[self.parked_key(pnid, key), self.parked_ids_key(pnid, key)]
        )
        return [_load_item(item) for item in raw]

    async def _claim_parked(self, pnid: str, key: str, token: str, now_us: int,
                            lease: timedelta) -> list[ParkedMessage]:
        raw = await self._claim_parked_script(
            keys=[self.parked_lock_key(pnid, key), self.parked_key(pnid, key)],
            args=[token, str(max(1, int(lease / timedelta(milliseconds=1))))],
        )
        return [_load_item(item) for item in raw]

    async def _remove_parked(self, pnid: str, key: str, item_id: str) -> None:
        await self._remove_parked_script(
            keys=[self.parked_key(pnid, key), self.parked_ids_key(pnid, key)], args=[item_id])

    async def _release_parked(self, pnid: str, key: str, token: str) -> None:
        await self._release_parked_script(keys=[self.parked_lock_key(pnid, key)], args=[token])

    async def _delete(self, pnid: str, key: str, aliases: Sequence[str]) -> None:
        names = [self.state_key(pnid, key), self.parked_key(pnid, key),
                 self.parked_ids_key(pnid, key)]
        names += [self.alias_key(pnid, alias) for alias in aliases]
        await self._client.delete(*names)
