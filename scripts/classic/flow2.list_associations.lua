local classic = require("classic")

function from_peer(msg, ctx)
  if ctx.status ~= 200 then return classic.problem(msg, ctx) end
  local items = {}
  for i, c in ipairs(msg) do items[i] = classic.association(c) end
  return classic.page(items)
end
