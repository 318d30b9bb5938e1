--[[ oke.lua: helpers for okegw field mappings.

A mapping script loads this with `local oke = require("oke")`. Everything
here is plain Lua 5.4 and runs inside the mapping sandbox: it uses only
string, table, math and the gateway's `json` table, never io or os.

scripts/README.md explains the helpers for the people who write mappings.
Notes for the next engineer:

  * Paths are dotted text, parsed once per rule into segments:
      "name"            key of an object
      "0", "1", ...     element of a list, counted from 0 as in JSON
      "field=value"     the first list element whose field equals value
      "nl-test-admin"   after a segment "consumers": the same as
                        "consumerKey=nl-test-admin"
      "*"               every element (rules only)
    A path may also be a Lua list of segments ({"a.b", 0}) for keys that
    contain dots; there strings are plain keys and numbers list positions.
  * Errors. Helpers raise a marked table (see `fail`) without a file:line
    of their own. The public functions turn it into a string that points
    at the line of the caller's script; oke.rules points at the line where
    the rules were written and names the rule. A reader of the log should
    never have to open this file to understand a message.
  * Dates are computed with days-from-civil arithmetic, never os.time,
    which would depend on the machine's time zone.
]]

local json = json -- the gateway's json table: null, array, object, is_array
-- Library functions as locals: each lookup through the shared, read-only
-- library tables costs a metamethod call, and rules run for every message.
local json_is_array, json_array, json_null = json.is_array, json.array, json.null
local sformat = string.format
local tconcat, tsort, tmove, tremove, tunpack, tpack =
  table.concat, table.sort, table.move, table.remove, table.unpack, table.pack
local mtointeger, mfloor, mhuge, mabs = math.tointeger, math.floor, math.huge, math.abs

local oke = {}

-- ---- errors ----------------------------------------------------------------

-- Our own errors are tables with this metatable, so a public function can
-- tell them (re-raise pointing at the caller) from an error of the Lua
-- runtime or of a user's function (pass on as it is).
local Fail = {}

local function fail(fmt, ...)
  error(setmetatable({ msg = sformat(fmt, ...) }, Fail), 0)
end

local function message_of(e)
  if getmetatable(e) == Fail then
    return e.msg
  end
  return tostring(e)
end

-- Wraps a helper for scripts: its errors name the script's line (level 2 =
-- the function that called the helper).
local function public(f)
  return function(...)
    local r = tpack(pcall(f, ...))
    if r[1] then
      return tunpack(r, 2, r.n)
    end
    if getmetatable(r[2]) == Fail then
      error(r[2].msg, 2)
    end
    error(r[2], 0)
  end
end

-- Markers a script can hand to the helpers. They are functions, not tables,
-- so that one leaking into a message by mistake is a conversion error rather
-- than a silent {}.
oke.keep = function() end   -- enum default: leave values that are not in the map
oke.remove = function() end -- a fn rule's answer: delete the field

-- A value as a reader would recognise it in a message.
local function describe(v)
  if v == nil then
    return "nothing"
  elseif v == json_null then
    return "null"
  elseif type(v) == "string" then
    if #v > 60 then
      v = v:sub(1, 57) .. "..."
    end
    return '"' .. v .. '"'
  elseif type(v) == "table" then
    return (json_is_array(v) or v[1] ~= nil) and "a list" or "an object"
  end
  return tostring(v)
end

-- ---- values ----------------------------------------------------------------

-- A table converted from a JSON array carries the json_array marker; one
-- built in Lua is a list when it has an element 1.
local function is_list(t)
  -- t[1] first: most lists answer there, without a call into C
  return type(t) == "table" and (t[1] ~= nil or json_is_array(t))
end

-- Deep copy, so a value from a rule (set/default) is never shared between
-- two messages.
local function copy(v)
  if type(v) ~= "table" then
    return v
  end
  local t = {}
  for k, x in pairs(v) do
    t[k] = copy(x)
  end
  if json_is_array(v) then
    json_array(t)
  end
  return t
end

-- ---- paths -----------------------------------------------------------------

-- One segment: { text = as written, key = "x" } | { index = 0-based }
-- | { field =, value =, plain = } | { each = true }.
local function parse_path(path)
  local segs = {}
  if type(path) == "table" then
    for i, p in ipairs(path) do
      if type(p) == "number" and mtointeger(p) and p >= 0 then
        segs[i] = { text = tostring(p), index = mtointeger(p) }
      elseif type(p) == "string" then
        segs[i] = { text = p, key = p }
      else
        fail("path part %d is %s; use text for keys and whole numbers from 0 for list positions",
          i, describe(p))
      end
    end
    return segs
  end
  if type(path) ~= "string" then
    fail("a path must be text like \"person.givenName\", not %s", describe(path))
  end
  if path == "" then
    return segs -- the message itself
  end
  local prev
  for part in (path .. "."):gmatch("([^.]*)%.") do
    local s
    if part == "" then
      fail('the path "%s" has an empty part (two dots, or a dot at the start or end)', path)
    elseif part == "*" then
      s = { each = true }
    elseif part:match("^%d+$") then
      s = { index = mtointeger(tonumber(part)) }
    elseif part:find("=", 1, true) then
      local field, value = part:match("^([^=]+)=(.*)$")
      if not field then
        fail('the path "%s": "%s" needs a field name before "="', path, part)
      end
      s = { field = field, value = value }
    elseif prev == "consumers" then
      -- OKE keeps its own fields in consumers[] under a consumerKey.
      -- plain: if a peer sends consumers as an object, use the key as is.
      s = { field = "consumerKey", value = part, plain = part }
    else
      s = { key = part }
    end
    s.text = part
    segs[#segs + 1] = s
    prev = part
  end
  return segs
end

local function path_text(segs, n)
  local t = {}
  for i = 1, n or #segs do
    t[i] = segs[i].text
  end
  return tconcat(t, ".")
end

local function has_each(segs)
  for _, s in ipairs(segs) do
    if s.each then
      return true
    end
  end
  return false
end

local function no_each(segs)
  if has_each(segs) then
    fail('"*" in "%s" only works in oke.rules', path_text(segs))
  end
end

-- The child of node at segment s, and the Lua key it sits under.
local function child(node, s)
  if type(node) ~= "table" then
    return nil
  end
  if s.key then
    if is_list(node) then
      return nil
    end
    return node[s.key], s.key
  elseif s.index then
    if next(node) ~= nil and not is_list(node) then
      return nil
    end
    return node[s.index + 1], s.index + 1
  elseif s.field then
    if is_list(node) then
      for k, e in ipairs(node) do
        if type(e) == "table" and e[s.field] ~= nil and tostring(e[s.field]) == s.value then
          return e, k
        end
      end
      return nil
    elseif s.plain then
      return node[s.plain], s.plain
    end
    return nil
  end
  fail('"*" only works in oke.rules')
end

local function get(msg, segs, n)
  local node = msg
  for i = 1, n or #segs do
    node = child(node, segs[i])
    if node == nil then
      return nil
    end
  end
  return node
end

-- Puts v (nil = remove) into node at segment s = segs[n]. segs and n name
-- the path so far in an error only: a set builds no text unless it fails.
local function put(node, s, v, segs, n)
  if s.key then
    if is_list(node) then
      fail('cannot set "%s": "%s" is a list; pick an element with a number (0 is the first)',
        path_text(segs, n), s.text)
    end
    node[s.key] = v
  elseif s.index then
    if next(node) ~= nil and not is_list(node) then
      fail('cannot set "%s": it is an object, not a list, so "%s" is no position',
        path_text(segs, n), s.text)
    end
    local len, i = #node, s.index + 1
    if i > len + 1 then
      fail('cannot set "%s": position %d is past the end of the list (it has %d element%s)',
        path_text(segs, n), s.index, len, len == 1 and "" or "s")
    end
    if v == nil then
      if i <= len then
        tremove(node, i)
      end
    else
      node[i] = v
      json_array(node)
    end
  elseif s.field then
    if next(node) == nil or is_list(node) then
      local _, k = child(node, s)
      if v == nil then
        if k then
          tremove(node, k)
        end
        return
      end
      -- the element keeps (or gets) the field it was found by
      if type(v) == "table" and not json_is_array(v) and v[s.field] == nil then
        v[s.field] = s.value
      end
      node[k or #node + 1] = v
      json_array(node)
    elseif s.plain then
      node[s.plain] = v
    else
      fail('cannot set "%s": it is an object, not a list to search for %s', path_text(segs, n),
        s.text)
    end
  end
end

local function set(msg, segs, v)
  if #segs == 0 then
    fail("cannot replace the whole message this way; return the new message instead")
  end
  if type(msg) ~= "table" then
    fail('cannot set "%s": the message is %s, not an object', path_text(segs), describe(msg))
  end
  if v == oke.remove then
    v = nil
  end
  local node = msg
  for i = 1, #segs - 1 do
    local s = segs[i]
    local c = child(node, s)
    if c == nil or c == json_null then
      local nxt = segs[i + 1]
      -- what to create follows from the segment that will look inside it
      c = (nxt.index or nxt.field) and json_array() or {}
      put(node, s, c, segs, i)
    elseif type(c) ~= "table" then
      fail('cannot set "%s": "%s" holds %s, not an object or a list',
        path_text(segs), path_text(segs, i), describe(c))
    end
    node = c
  end
  put(node, segs[#segs], v, segs, #segs)
end

-- Removes the value at the path; returns it (nil when there was none).
local function delete(msg, segs)
  if #segs == 0 then
    fail("cannot delete the whole message")
  end
  local parent = get(msg, segs, #segs - 1)
  local last = segs[#segs]
  local old, k = child(parent, last)
  if old == nil then
    return nil
  end
  if is_list(parent) then
    tremove(parent, k)
    json_array(parent) -- stays a list when it becomes empty
  else
    parent[k] = nil
  end
  return old
end

local function move(msg, from, to)
  local v = delete(msg, from)
  if v == nil then
    return false
  end
  set(msg, to, v)
  return true
end

-- ---- the consumers entry ---------------------------------------------------

local function consumer(msg, key)
  key = key or "nl-test-admin"
  if type(msg) ~= "table" then
    fail("the message is %s, not an object", describe(msg))
  end
  local segs = { { text = "consumers", key = "consumers" },
                 { text = key, field = "consumerKey", value = key, plain = key } }
  local c = get(msg, segs)
  if type(c) ~= "table" then
    c = { consumerKey = key }
    set(msg, segs, c)
  end
  return c
end

-- ---- enumerations ----------------------------------------------------------

local function known_values(map)
  local keys = {}
  for k in pairs(map) do
    keys[#keys + 1] = tostring(k)
  end
  tsort(keys)
  if #keys > 20 then
    keys = tmove(keys, 1, 20, 1, {})
    keys[21] = "..."
  end
  return tconcat(keys, ", ")
end

local function map_enum(value, map, default)
  if type(map) ~= "table" then
    fail("map_enum needs a table of values, got %s", describe(map))
  end
  local r = map[value]
  -- JSON numbers arrive as numbers; a map written with text keys still matches
  if r == nil and type(value) == "number" then
    r = map[tostring(value)]
  end
  if r ~= nil then
    return r
  end
  if default == oke.keep then
    return value
  elseif default ~= nil then
    return default
  end
  fail("the value %s is not in the map (known values: %s); add it to the map or give a default",
    describe(value), known_values(map))
end

-- ---- dates -----------------------------------------------------------------

-- Days since 1970-01-01 of a civil date (proleptic Gregorian), after Howard
-- Hinnant's days_from_civil. Pure integer arithmetic: no time zone involved.
local function days_from_civil(y, m, d)
  if m <= 2 then
    y = y - 1
  end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = z // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then
    y = y + 1
  end
  return y, m, d
end

local DAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function days_in_month(y, m)
  if m == 2 then
    local leap = (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
    return leap and 29 or 28
  end
  return DAYS[m]
end

-- Dutch wall-clock time: CET (+01:00) with summer time (+02:00) from the
-- last Sunday of March to the last Sunday of October, 01:00 UTC both (EU
-- rule). A fixed +01:00 would be an hour off half the year.
local AMSTERDAM = "Europe/Amsterdam"

local function last_sunday(y, m)
  local last = days_from_civil(y, m, days_in_month(y, m))
  return last - (last + 4) % 7 -- 1970-01-01 was a Thursday (4)
end

local function amsterdam_offset_at(epoch)
  local y = civil_from_days(epoch // 86400)
  local from = last_sunday(y, 3) * 86400 + 3600
  local to = last_sunday(y, 10) * 86400 + 3600
  return (epoch >= from and epoch < to) and 7200 or 3600
end

-- The offset for a wall-clock time read as if it were UTC. In October the
-- hour 02:00-03:00 happens twice: we take the first (summer time). In March
-- 02:00-03:00 does not exist: it is read as winter time.
local function amsterdam_offset_local(wall)
  return amsterdam_offset_at(wall - 7200) == 7200 and 7200 or 3600
end

-- An offset setting: "Z", "+01:00", "-05:30" or "Europe/Amsterdam".
local function parse_offset(spec)
  if spec == AMSTERDAM then
    return { zone = AMSTERDAM }
  end
  if spec == "Z" or spec == "z" then
    return { secs = 0, z = true }
  end
  local sign, h, m = tostring(spec):match("^([+-])(%d%d):(%d%d)$")
  h, m = tonumber(h), tonumber(m)
  if not sign or h > 23 or m > 59 then
    fail('%s is not a time zone offset; write "Z", "+01:00", "-05:00" or "%s"',
      describe(spec), AMSTERDAM)
  end
  local secs = (h * 3600 + m * 60) * (sign == "-" and -1 or 1)
  return { secs = secs }
end

local function offset_text(secs, z)
  if z then
    return "Z"
  end
  local sign = secs < 0 and "-" or "+"
  secs = mabs(secs)
  return sformat("%s%02d:%02d", sign, secs // 3600, secs % 3600 // 60)
end

-- Splits a date-time text. Seconds may be left out (read as :00), the
-- separator may be T or a space. Returns a table with the parts and
-- `wall`: the wall-clock time as seconds since 1970 read as if it were UTC;
-- `offset` is nil when the text has none.
local function parse_datetime(s)
  if type(s) ~= "string" then
    fail("expected a date-time text like \"2026-03-17T09:00:00+01:00\", got %s", describe(s))
  end
  local y, mo, d, h, mi, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d)(.*)$")
  if not y then
    fail('%s is not a date-time like "2026-03-17T09:00:00+01:00"', describe(s))
  end
  local sec, frac = rest:match("^:(%d%d)(%.?%d*)")
  if sec then
    rest = rest:sub(4 + #frac)
  else
    sec, frac = "00", ""
  end
  if frac ~= "" and not frac:match("^%.%d+$") then
    fail("%s has unreadable seconds", describe(s))
  end
  y, mo, d, h, mi, sec = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  if mo < 1 or mo > 12 or d < 1 or d > days_in_month(y, mo) or h > 23 or mi > 59 or sec > 60 then
    fail("%s is not a real date and time", describe(s))
  end
  local t = { frac = frac }
  t.wall = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec
  if rest ~= "" then
    local ok, off = pcall(parse_offset, rest)
    if not ok or off.zone then
      fail('%s ends in "%s", which is not a time zone offset like "+01:00" or "Z"', describe(s), rest)
    end
    t.offset = off
  end
  return t
end

local NO_OFFSET = "%s has no time zone offset (like +01:00 or Z), which OKE requires; "
  .. "if the supplier sends local times, add the offset first (date_add_offset, or add_offset in a rule)"

-- Seconds since 1970 (UTC) as wall-clock text at offset `off`; returns the
-- text without the offset and the offset text ("+01:00" or "Z").
local function format_datetime(epoch, frac, off)
  -- years 1..9999 only: RFC 3339 has four-digit years
  if epoch < -62135596800 + 86400 or epoch > 253402300799 - 86400 then
    fail("the time %s falls outside the years 1 to 9999", tostring(epoch))
  end
  local secs = off.zone and amsterdam_offset_at(epoch) or off.secs
  local wall = epoch + secs
  local days = wall // 86400
  local y, m, d = civil_from_days(days)
  local r = wall - days * 86400
  return sformat("%04d-%02d-%02dT%02d:%02d:%02d%s", y, m, d, r // 3600, r % 3600 // 60,
    r % 60, frac), offset_text(secs, off.z)
end

local function format_with_offset(epoch, frac, off)
  local text, offset = format_datetime(epoch, frac, off)
  return text .. offset
end

-- "2026-03-17T09:00:00+01:00" -> 1773734400; unit "ms" gives milliseconds.
local function date_to_epoch(s, unit)
  local t = parse_datetime(s)
  if not t.offset then
    fail(NO_OFFSET, describe(s))
  end
  local epoch = t.wall - t.offset.secs
  if unit == "ms" then
    -- from the digits, not via a float, so .123 is exactly 123 ms
    return epoch * 1000 + tonumber((t.frac:sub(2) .. "000"):sub(1, 3))
  elseif t.frac ~= "" and tonumber("0" .. t.frac) ~= 0 then
    return epoch + tonumber("0" .. t.frac)
  end
  return epoch
end

-- 1773734400 -> "2026-03-17T08:00:00Z" (offset "Z" by default).
local function date_from_epoch(n, offset, unit)
  if type(n) == "string" and tonumber(n) then
    n = tonumber(n) -- some suppliers send epoch seconds as text
  end
  if type(n) ~= "number" or n ~= n or n == mhuge or n == -mhuge then
    fail("expected a number of seconds since 1970, got %s", describe(n))
  end
  local off = parse_offset(offset or "Z")
  local whole, ms
  if unit == "ms" then
    whole, ms = mfloor(n) // 1000, mfloor(n) % 1000
  else
    whole = mfloor(n)
    ms = mfloor((n - whole) * 1000 + 0.5)
    if ms == 1000 then
      whole, ms = whole + 1, 0
    end
  end
  whole = mtointeger(whole)
  if not whole then
    fail("the time %s falls outside the years 1 to 9999", tostring(n))
  end
  return format_with_offset(whole, ms > 0 and sformat(".%03d", ms) or "", off)
end

-- "2026-03-17T09:00:00" + "+01:00" -> "2026-03-17T09:00:00+01:00". A text
-- that already has an offset is returned unchanged, so the rule can run twice.
local function date_add_offset(s, offset)
  local t = parse_datetime(s)
  if t.offset then
    return s
  end
  local off = parse_offset(offset)
  local secs = off.zone and amsterdam_offset_local(t.wall) or off.secs
  return format_with_offset(t.wall - secs, t.frac, off.zone and { secs = secs } or off)
end

-- "2026-03-17T08:00:00Z" + "+01:00" -> "2026-03-17T09:00:00": the local
-- time without offset, for a supplier that wants it that way.
local function date_local(s, offset)
  local t = parse_datetime(s)
  if not t.offset then
    fail(NO_OFFSET, describe(s))
  end
  return (format_datetime(t.wall - t.offset.secs, t.frac, parse_offset(offset)))
end

-- ---- durations -------------------------------------------------------------

local DATE_UNITS = { W = 604800, D = 86400 }
local TIME_UNITS = { H = 3600, M = 60, S = 1 }

-- "PT1H30M" -> 5400 seconds (an integer when whole).
local function duration_seconds(s)
  if type(s) ~= "string" then
    fail('expected an ISO 8601 duration like "PT40M", got %s', describe(s))
  end
  local sign, body = s:match("^([+-]?)P(.*)$")
  if not sign then
    fail('%s is not an ISO 8601 duration like "PT40M"', describe(s))
  end
  local datepart, timepart = body:match("^([^T]*)T(.*)$")
  if not datepart then
    datepart = body
  end
  local total, last = 0, false
  local function scan(part, units, order)
    local pos, rank = 1, 0
    while pos <= #part do
      local num, unit, e = part:match("^(%d+[.,]?%d*)(%a)()", pos)
      if not num then
        fail('%s is not an ISO 8601 duration like "PT40M"', describe(s))
      end
      if units == DATE_UNITS and (unit == "Y" or unit == "M") then
        local what = unit == "Y" and "years" or "months"
        fail('%s counts %s (an %s before the T means %s in ISO 8601), which OKE flags; '
          .. 'for %s minutes write "PT%sM"', describe(s), what, unit, what, num, num)
      end
      local r = order:find(unit, 1, true)
      if not units[unit] or not r or r <= rank or last then
        fail('%s is not an ISO 8601 duration like "PT40M"', describe(s))
      end
      rank = r
      -- only the last number may have a fraction
      if num:find("[.,]") then
        last = true
      end
      local v = tonumber((num:gsub(",", ".")))
      total = total + v * units[unit]
      pos = e
    end
  end
  scan(datepart, DATE_UNITS, "WD")
  if timepart then
    if timepart == "" then
      fail('%s has a T but no hours, minutes or seconds after it', describe(s))
    end
    scan(timepart, TIME_UNITS, "HMS")
  elseif datepart == "" then
    fail('%s has no amount; write for example "PT40M"', describe(s))
  end
  total = mtointeger(total) or total
  return sign == "-" and -total or total
end

local function whole_number(n, what)
  if type(n) == "string" and tonumber(n) then
    n = tonumber(n)
  end
  local i = type(n) == "number" and mtointeger(n)
  if not i then
    fail("expected a whole number of %s, got %s", what, describe(n))
  end
  return i
end

local function duration_to(s, per)
  local secs = duration_seconds(s)
  return mtointeger(secs / per) or secs / per
end

-- 90 minutes -> "PT90M" (the form OKE's own examples use).
local function duration_from_seconds(n)
  n = whole_number(n, "seconds")
  local sign = n < 0 and "-" or ""
  n = mabs(n)
  local m, s = n // 60, n % 60
  if s == 0 then
    return sformat("%sPT%dM", sign, m)
  elseif m == 0 then
    return sformat("%sPT%dS", sign, s)
  end
  return sformat("%sPT%dM%dS", sign, m, s)
end

local function duration_from_minutes(n)
  return duration_from_seconds(whole_number(n, "minutes") * 60)
end

-- ---- language-typed strings ------------------------------------------------

local function lts(value, language)
  if value == nil or value == json_null or is_list(value) then
    return value -- nothing to wrap, or already a list
  end
  return json_array({ { language = language or "nl-NL", value = value } })
end

-- The nl-NL text of an LTS list (OKE ignores other languages). A plain text
-- is returned as it is, so a mapping works on either form.
local function lts_value(list, language)
  if list == json_null then
    return nil
  elseif type(list) ~= "table" then
    return list
  end
  language = (language or "nl-NL"):lower()
  for _, e in ipairs(list) do
    if type(e) == "table" and type(e.language) == "string" and e.language:lower() == language then
      return e.value
    end
  end
  return nil
end

-- ---- text ------------------------------------------------------------------

-- The text without white space at either end, in time linear in its length:
-- the idiom s:match("^%s*(.-)%s*$") backtracks over long runs of spaces, and
-- the gateway refuses it on such text.
local function trim(s)
  if type(s) ~= "string" then
    fail("expected a text, got %s", describe(s))
  end
  local first = s:find("%S")
  if not first then
    return ""
  end
  return s:sub(first, #s - s:reverse():find("%S") + 1)
end

-- ---- rules -----------------------------------------------------------------

local KIND_ORDER = { "rename", "move", "enum", "drop", "default", "set", "date", "duration", "lts", "fn" }

-- Settings each kind allows besides its own key.
local KINDS = {
  rename = { to = true, required = true },
  move = { to = true, required = true },
  enum = { map = true, default = true, reverse = true, required = true },
  drop = {},
  default = { value = true },
  set = { value = true },
  date = { to = true, from = true, add_offset = true, offset = true, required = true },
  duration = { to = true, from = true, required = true },
  lts = { to = true, from = true, language = true, required = true },
  fn = { path = true },
}

local function settings_list(kind)
  local t = {}
  for k in pairs(KINDS[kind]) do
    t[#t + 1] = k
  end
  tsort(t)
  return #t > 0 and tconcat(t, ", ") or "nothing else"
end

local function one_of(rule, name, allowed)
  local v = rule[name]
  for _, a in ipairs(allowed) do
    if v == a then
      return v
    end
  end
  fail('%s = %s is not possible here; use one of: "%s"', name, describe(v), tconcat(allowed, '", "'))
end

-- Checks one rule as written and returns it compiled: { kind, segs, each,
-- required } plus the settings its kind needs (to, map, value, ...). All
-- checks happen here, when the script loads, so `okegw -t` reports them.
local function compile(rule)
  local found = {}
  for _, k in ipairs(KIND_ORDER) do
    -- "default" is also a setting of enum: next to enum it is no kind
    if rule[k] ~= nil and not (k == "default" and rule.enum ~= nil) then
      found[#found + 1] = k
    end
  end
  if #found > 1 then
    fail("it mixes two kinds, %s and %s; write one rule for each", found[1], found[2])
  end
  local kind = found[1]
  if not kind then
    local keys = {}
    for k in pairs(rule) do
      keys[#keys + 1] = tostring(k)
    end
    tsort(keys)
    fail("no rule kind found (it has: %s); start the rule with one of: %s",
      #keys > 0 and tconcat(keys, ", ") or "nothing", tconcat(KIND_ORDER, ", "))
  end
  for k in pairs(rule) do
    if k ~= kind and not KINDS[kind][k] then
      fail('"%s" is not a setting of %s rules (they know: %s)', tostring(k), kind, settings_list(kind))
    end
  end

  local c = { kind = kind, required = rule.required }
  local path
  if kind == "fn" then
    if type(rule.fn) ~= "function" then
      fail("fn must be a function, like fn = function(value, msg, ctx) ... end")
    end
    path = rule.path or ""
  else
    path = rule[kind]
  end
  if type(path) ~= "string" and type(path) ~= "table" then
    fail('%s needs a path as text, like %s = "person.givenName"', kind, kind)
  end
  c.segs = parse_path(path)
  c.each = has_each(c.segs)
  if #c.segs == 0 and kind ~= "fn" then
    fail("the path is empty")
  end

  if kind == "rename" or kind == "move" then
    if rule.to == nil then
      fail('%s needs to = "new.path"', kind)
    end
    c.to = parse_path(rule.to)
    local stars_from, stars_to = 0, 0
    for _, s in ipairs(c.segs) do
      stars_from = stars_from + (s.each and 1 or 0)
    end
    for _, s in ipairs(c.to) do
      stars_to = stars_to + (s.each and 1 or 0)
    end
    if stars_to > stars_from then
      fail('to = "%s" has more "*" than the path it comes from', path_text(c.to))
    end
    c.to_fixed = stars_to == 0 -- the same path for every match: no copy per call
  elseif kind == "enum" then
    if type(rule.map) ~= "table" then
      fail("enum needs map = { ourValue = \"theirValue\", ... }")
    end
    c.map, c.default = rule.map, rule.default
    if rule.reverse then
      -- from_peer: their value back to ours, so every value must be unique
      local inv = {}
      for k, v in pairs(rule.map) do
        if inv[v] ~= nil then
          fail("with reverse = true every value in map must be different, but %s appears twice",
            describe(v))
        end
        inv[v] = k
      end
      c.map = inv
    end
  elseif kind == "default" or kind == "set" then
    if rule.value == nil then
      fail(kind == "set" and "set needs value = ...; to remove a field use drop"
        or "default needs value = ...")
    end
    c.value = rule.value
  elseif kind == "date" then
    local n = (rule.to ~= nil and 1 or 0) + (rule.from ~= nil and 1 or 0) + (rule.add_offset ~= nil and 1 or 0)
    if n ~= 1 then
      fail('date needs exactly one of: to = "epoch", from = "epoch", add_offset = "+01:00"')
    end
    if rule.add_offset ~= nil then
      parse_offset(rule.add_offset)
      if rule.offset ~= nil then
        fail("add_offset already says the offset; leave out offset")
      end
    elseif rule.to ~= nil then
      one_of(rule, "to", { "epoch", "epoch_ms", "local" })
      if rule.to == "local" and rule.offset == nil then
        fail('to = "local" needs offset = "+01:00" (or "%s")', AMSTERDAM)
      elseif rule.to ~= "local" and rule.offset ~= nil then
        fail("the offset is part of the date itself; leave out offset")
      end
    else
      one_of(rule, "from", { "epoch", "epoch_ms" })
    end
    if rule.offset ~= nil then
      parse_offset(rule.offset)
    end
    c.to, c.from, c.add_offset, c.offset = rule.to, rule.from, rule.add_offset, rule.offset
  elseif kind == "duration" then
    if (rule.to == nil) == (rule.from == nil) then
      fail('duration needs either to = "minutes" or from = "minutes"')
    end
    one_of(rule, rule.to and "to" or "from", { "minutes", "seconds" })
    c.to, c.from = rule.to, rule.from
  elseif kind == "lts" then
    if (rule.to == nil) == (rule.from == nil) then
      fail('lts needs either to = "text" or from = "text"')
    end
    one_of(rule, rule.to and "to" or "from", { "text" })
    c.to, c.from, c.language = rule.to, rule.from, rule.language
  elseif kind == "fn" then
    c.fn = rule.fn
  end
  -- drop, set and rename look the value up themselves (or need none)
  c.needs_value = c.required or not (kind == "drop" or kind == "set" or kind == "rename"
    or kind == "move")
  return c
end

local function is_missing(v)
  return v == nil or v == json_null
end

-- The new value for a field, by rule kind. nil = leave the field alone.
local convert = {
  enum = function(c, v)
    if is_list(v) then
      local out = json_array()
      for i, e in ipairs(v) do
        out[i] = map_enum(e, c.map, c.default)
      end
      return out
    end
    return map_enum(v, c.map, c.default)
  end,
  date = function(c, v)
    if c.add_offset then
      return date_add_offset(v, c.add_offset)
    elseif c.to == "local" then
      return date_local(v, c.offset)
    elseif c.to then
      return date_to_epoch(v, c.to == "epoch_ms" and "ms" or nil)
    end
    return date_from_epoch(v, c.offset, c.from == "epoch_ms" and "ms" or nil)
  end,
  duration = function(c, v)
    local per = (c.to or c.from) == "minutes" and 60 or 1
    if c.to then
      return duration_to(v, per)
    end
    return duration_from_seconds(whole_number(v, c.from) * per)
  end,
  lts = function(c, v)
    if c.to then
      local text = lts_value(v, c.language)
      return text == nil and oke.remove or text
    end
    return lts(v, c.language)
  end,
}

-- Applies compiled rule c at one concrete path, whose value v the caller
-- already looked up; returns the message (a fn rule on the whole message may
-- replace it).
local function apply(c, msg, segs, stars, v, ctx)
  local kind = c.kind
  if c.required and is_missing(v) and kind ~= "fn" then
    fail("the field is missing, and the rule says required = true")
  end
  if kind == "drop" then
    delete(msg, segs)
  elseif kind == "set" then
    set(msg, segs, copy(c.value))
  elseif kind == "default" then
    if is_missing(v) then
      set(msg, segs, copy(c.value))
    end
  elseif kind == "rename" or kind == "move" then
    local to = c.to
    if not c.to_fixed then
      -- each "*" in `to` stands for the element the source was found in
      local k = 0
      to = {}
      for i, s in ipairs(c.to) do
        if s.each then
          k = k + 1
          s = stars[k]
        end
        to[i] = s
      end
    end
    move(msg, segs, to) -- nothing when there is no value to move
  elseif kind == "fn" then
    local r = c.fn(v, msg, ctx)
    if r ~= nil then
      if #segs == 0 then
        return r
      end
      set(msg, segs, r)
    end
  elseif not is_missing(v) then
    set(msg, segs, convert[kind](c, v))
  end
  return msg
end

-- Every concrete path a rule path stands for: with each "*" replaced by
-- every element there is. Appends { segs, stars, value } to out, the value
-- found on the way, so that it need not be looked up again.
local function expand(node, segs, i, prefix, stars, out)
  if i > #segs then
    out[#out + 1] = { tmove(prefix, 1, #segs, 1, {}), tmove(stars, 1, #stars, 1, {}), node }
    return
  end
  local s = segs[i]
  if not s.each then
    prefix[i] = s
    expand(child(node, s), segs, i + 1, prefix, stars, out)
    return
  end
  if type(node) ~= "table" then
    return
  end
  local picks = {}
  if is_list(node) then
    for k = 1, #node do
      picks[k] = { text = tostring(k - 1), index = k - 1 }
    end
  else
    local keys = {}
    for k in pairs(node) do
      keys[#keys + 1] = k
    end
    tsort(keys)
    for k, key in ipairs(keys) do
      picks[k] = { text = key, key = key }
    end
  end
  for _, p in ipairs(picks) do
    prefix[i] = p
    stars[#stars + 1] = p
    expand(node[p.index and p.index + 1 or p.key], segs, i + 1, prefix, stars, out)
    stars[#stars] = nil
  end
end

local function rules(list)
  -- The line of the script that wrote `oke.rules { ... }`: level 3 is the
  -- caller of this function (1 = pcall, 2 = here). Every rule error starts
  -- with it, so the log points at the script, not at this library.
  local _, where = pcall(error, "", 3)
  where = type(where) == "string" and where or ""
  if type(list) ~= "table" then
    error(where .. "oke.rules needs a list of rules: oke.rules { { ... }, { ... } }", 0)
  end
  if list[1] == nil and next(list) ~= nil then
    error(where .. "oke.rules needs a list of rules, each in its own { }: "
      .. "oke.rules { { rename = \"a\", to = \"b\" } } (the inner braces are missing)", 0)
  end
  local compiled = {}
  for i, rule in ipairs(list) do
    if type(rule) ~= "table" then
      error(sformat("%srule %d is %s; each rule is a table like { drop = \"description\" }",
        where, i, describe(rule)), 0)
    end
    local ok, c = pcall(compile, rule)
    if not ok then
      local kind_path = ""
      for _, k in ipairs(KIND_ORDER) do
        local p = k == "fn" and rule.path or rule[k]
        if rule[k] ~= nil and type(p) == "string" then
          kind_path = sformat(" (%s \"%s\")", k, p)
          break
        end
      end
      error(sformat("%srule %d%s: %s", where, i, kind_path, message_of(c)), 0)
    end
    compiled[i] = c
  end

  -- The rule and the concrete path being applied, for the error message:
  -- all rules of a message run under one pcall, not one per rule.
  local cur_i, cur_c, cur_segs
  local no_stars = {}

  local function run_all(msg, ctx)
    for i = 1, #compiled do
      local c = compiled[i]
      cur_i, cur_c = i, c
      if c.each then
        local targets = {}
        expand(msg, c.segs, 1, {}, {}, targets)
        if c.kind == "drop" then
          -- from the back, so removing list elements does not shift the rest
          local r = {}
          for k = #targets, 1, -1 do
            r[#r + 1] = targets[k]
          end
          targets = r
        end
        for _, t in ipairs(targets) do
          local v = t[3]
          if c.kind == "fn" then
            v = get(msg, t[1]) -- a fn may have changed other elements: the value as it is now
          end
          cur_segs = t[1]
          msg = apply(c, msg, t[1], t[2], v, ctx)
        end
      else
        -- one concrete path: no target lists to build
        cur_segs = c.segs
        local v -- (not `c.needs_value and get(...)`: a false value would turn into nil)
        if c.needs_value then
          v = get(msg, c.segs)
        end
        msg = apply(c, msg, c.segs, no_stars, v, ctx)
      end
    end
    return msg
  end

  return function(msg, ctx)
    local ok, r = pcall(run_all, msg, ctx)
    if not ok then
      local at = path_text(cur_segs)
      error(sformat("%srule %d (%s%s): %s", where, cur_i, cur_c.kind,
        at ~= "" and ' "' .. at .. '"' or "", message_of(r)), 0)
    end
    return r
  end
end

-- ---- the public API --------------------------------------------------------

-- Paths from a script are parsed on every call; rules parse theirs once.
local function with_path(f)
  return function(msg, path, ...)
    local segs = parse_path(path)
    no_each(segs)
    return f(msg, segs, ...)
  end
end

oke.get = public(with_path(function(msg, segs)
  return get(msg, segs) -- a script's extra arguments are no count of segments
end))
oke.set = public(with_path(function(msg, segs, v)
  set(msg, segs, v)
  return msg
end))
oke.delete = public(with_path(delete))
oke.move = public(function(msg, from, to)
  local a, b = parse_path(from), parse_path(to)
  no_each(a)
  no_each(b)
  return move(msg, a, b)
end)
oke.consumer = public(consumer)
oke.map_enum = public(map_enum)
oke.date_to_epoch = public(date_to_epoch)
oke.date_from_epoch = public(date_from_epoch)
oke.date_add_offset = public(date_add_offset)
oke.date_local = public(date_local)
oke.duration_to_minutes = public(function(s) return duration_to(s, 60) end)
oke.duration_to_seconds = public(duration_seconds)
oke.duration_from_minutes = public(duration_from_minutes)
oke.duration_from_seconds = public(duration_from_seconds)
oke.lts = public(lts)
oke.lts_value = public(lts_value)
oke.trim = public(trim)
oke.copy = copy
oke.rules = rules -- not wrapped: it names the script's line itself

return oke
