-- Classic answers GET /api/v1/tests with a bare list of its tests.
local classic = require("classic")

function from_peer(msg, ctx)
  if ctx.status ~= 200 then return classic.problem(msg, ctx) end
  local items = {}
  for i, t in ipairs(msg) do items[i] = classic.component(t) end
  return classic.page(items)
end
